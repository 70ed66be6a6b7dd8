using System.Net;
using System.Text;
using Legate.Network;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Stats;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Legate.Admin;

/// <summary>
/// The admin HTTP endpoint (bootstrap <c>admin.address</c>): a table of handlers served by its
/// own Kestrel instance, so it stays up while listeners start and drain.
/// </summary>
internal sealed class AdminServer : IAsyncDisposable
{
    private readonly IServerInstance _server;
    private readonly Logger _log;
    private readonly KestrelListener _kestrel;

    public AdminServer(IPEndPoint endpoint, IServerInstance server)
    {
        _server = server;
        _log = server.Logs.Get(LogComponents.Admin);
        _kestrel = new KestrelListener(endpoint, HttpProtocols.Http1, ioQueueCount: 1, _log);

        var serverInfo = new ServerInfoHandler(server);
        var configDump = new ConfigDumpHandler(server);
        Handlers.Add("/", "Admin home page", false, HomeAsync);
        Handlers.Add("/config_dump", "dump current Envoy configs (experimental)", false, configDump.HandleAsync);
        Handlers.Add("/explain", Explain.ExplainAdminHandler.HelpText, false, new Explain.ExplainAdminHandler(server).HandleAsync);
        Handlers.Add("/help", "print out list of admin commands", false, HelpAsync);
        Handlers.Add("/quitquitquit", "exit the server", true, QuitAsync);
        Handlers.Add("/ready", "print server state, return 200 if LIVE, otherwise return 503", false, serverInfo.ReadyAsync);
        Handlers.Add("/server_info", "print server version/status information", false, serverInfo.ServerInfoAsync);
        if (server.Stats is { } stats)
        {
            new StatsAdminHandler(stats).Register(Handlers);
        }

        new Dashboard.DashboardHandler(server).Register(Handlers);
    }

    public AdminHandlerTable Handlers { get; } = new();

    /// <summary>The bound address (real port when 0 was configured), once started.</summary>
    public IPEndPoint BoundEndpoint => _kestrel.BoundEndpoint;

    /// <summary>e.g. <c>http://127.0.0.1:9901</c>.</summary>
    public Uri BaseUri => new("http://" + SocketAddresses.Format(BoundEndpoint));

    /// <exception cref="BindException">The admin address could not be bound.</exception>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _kestrel.StartAsync(HandleAsync, cancellationToken).ConfigureAwait(false);
        _log.Info($"admin listening on {BaseUri.ToString().TrimEnd('/')}");
    }

    public Task StopAsync(CancellationToken cancellationToken) => _kestrel.StopAsync(cancellationToken);

    public ValueTask DisposeAsync() => _kestrel.DisposeAsync();

    private async Task HandleAsync(HttpContext context)
    {
        var path = RequestPath(context);
        var method = context.Request.Method;
        AdminResponse response;
        var handler = Handlers.Find(path);
        if (handler is null)
        {
            // Envoy's trailing space makes "invalid path." its own sentence before the help.
            response = AdminResponse.Text("invalid path. " + Handlers.HelpText(), StatusCodes.Status404NotFound);
        }
        else if (handler.MutatesState && !HttpMethods.IsPost(method))
        {
            _log.Error($"admin path \"{handler.Path}\" mutates state, method={method} rather than POST");
            response = AdminResponse.Text($"Method {method} not allowed, POST required.", StatusCodes.Status405MethodNotAllowed);
        }
        else
        {
            response = await handler.Handler(context).ConfigureAwait(false);
        }

        var http = context.Response;
        http.StatusCode = response.Status;
        http.ContentType = response.ContentType;
        http.Headers.CacheControl = "no-cache, max-age=0";
        http.Headers.XContentTypeOptions = "nosniff";
        http.Headers.Server = "envoy";
        var body = Encoding.UTF8.GetBytes(response.Body);
        http.ContentLength = body.Length;
        if (!HttpMethods.IsHead(method))
        {
            await http.Body.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
        }
    }

    private static string RequestPath(HttpContext context)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (string.IsNullOrEmpty(raw) || raw[0] != '/')
        {
            return context.Request.Path.Value ?? "/";
        }

        var query = raw.IndexOf('?', StringComparison.Ordinal);
        return query < 0 ? raw : raw[..query];
    }

    private ValueTask<AdminResponse> HelpAsync(HttpContext context) => ValueTask.FromResult(AdminResponse.Text(Handlers.HelpText()));

    private ValueTask<AdminResponse> QuitAsync(HttpContext context)
    {
        // Only signals: the shutdown waits for this very request to finish before closing the admin.
        _server.RequestShutdown("/quitquitquit");
        return ValueTask.FromResult(AdminResponse.Text("OK\n"));
    }

    private ValueTask<AdminResponse> HomeAsync(HttpContext context)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html><head><title>Legate admin</title></head>\n<body>\n");
        sb.Append("<h1>Legate admin</h1>\n<table>\n");
        foreach (var handler in Handlers.Sorted)
        {
            if (handler.Path == "/")
            {
                continue;
            }

            // Relative links, so the page also works when embedded under another path. State-changing
            // endpoints are POST buttons, never links a crawler could follow.
            var target = handler.Path[1..];
            var link = handler.MutatesState
                ? $"<form action='{target}' method='post'><button>{target}</button></form>"
                : $"<a href='{target}'>{target}</a>";
            sb.Append("<tr><td>").Append(link).Append("</td><td>")
              .Append(WebUtility.HtmlEncode(handler.HelpText)).Append("</td></tr>\n");
        }

        sb.Append("</table>\n</body></html>\n");
        return ValueTask.FromResult(AdminResponse.Html(sb.ToString()));
    }
}
