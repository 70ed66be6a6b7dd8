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
    private readonly Dashboard.DashboardHandler _dashboard;

    public AdminServer(IPEndPoint endpoint, IServerInstance server)
    {
        _server = server;
        _log = server.Logs.Get(LogComponents.Admin);
        _kestrel = new KestrelListener(endpoint, HttpProtocols.Http1, ioQueueCount: 1, _log);

        var serverInfo = new ServerInfoHandler(server);
        var configDump = new ConfigDumpHandler(server);
        Handlers.Add("/", "Admin home page", false, HomeAsync);
        Handlers.Add("/clusters", ClustersHandler.HelpText, false, new ClustersHandler(server).HandleAsync);
        Handlers.Add("/certs", CertsHandler.HelpText, false, new CertsHandler(server).HandleAsync);
        Handlers.Add("/config_dump", "dump current Envoy configs (experimental)", false, configDump.HandleAsync);
        Handlers.Add("/explain", Explain.ExplainAdminHandler.HelpText, false, new Explain.ExplainAdminHandler(server).HandleAsync);
        Handlers.Add("/help", "print out list of admin commands", false, HelpAsync);
        Handlers.Add("/quitquitquit", "exit the server", true, QuitAsync);
        Handlers.Add("/reopen_logs", "reopen access logs", true, ReopenLogsAsync);
        var control = new ServerControlHandler(server);
        Handlers.Add("/healthcheck/fail", "cause the server to fail health checks", true, control.HealthCheckFailAsync);
        Handlers.Add("/healthcheck/ok", "cause the server to pass health checks", true, control.HealthCheckOkAsync);
        Handlers.Add("/drain_listeners", "drain listeners", true, control.DrainListenersAsync);
        Handlers.Add("/memory", "print current allocation/heap usage", false, control.MemoryAsync);
        Handlers.Add("/hot_restart_version", "print the hot restart compatibility version", false, control.HotRestartVersionAsync);
        Handlers.Add("/listeners", ListenersHandler.HelpText, false, new ListenersHandler(server).HandleAsync);
        Handlers.Add("/logging", LoggingHandler.HelpText, false, new LoggingHandler(server.Logs).HandleAsync);
        var runtime = new RuntimeHandler(server);
        Handlers.Add("/runtime", RuntimeHandler.RuntimeHelp, false, runtime.RuntimeAsync);
        Handlers.Add("/runtime_modify", RuntimeHandler.ModifyHelp, true, runtime.ModifyAsync);
        Handlers.Add("/ready", "print server state, return 200 if LIVE, otherwise return 503", false, serverInfo.ReadyAsync);
        new DiagnosticsHandler(server).Register(Handlers);
        Handlers.Add("/server_info", "print server version/status information", false, serverInfo.ServerInfoAsync);
        // As Envoy: /tap exists while at least one admin_config tap filter is loaded.
        Handlers.Add("/tap", TapHandler.HelpText, true, new TapHandler(server).HandleAsync, () => server.Taps?.HasRegistrations == true);
        if (server.Stats is { } stats)
        {
            new StatsAdminHandler(stats).Register(Handlers);
        }

        _dashboard = new Dashboard.DashboardHandler(server);
        _dashboard.Register(Handlers);
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
        var startTime = _server.Time.GetUtcNow();
        var startTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();
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
            if (context.Response.HasStarted)
            {
                // A streaming handler (/tap) wrote its own response.
                return;
            }
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

        if (_server.AdminAccessLogs.Length > 0)
        {
            LogRequest(context, startTime, startTimestamp, response.Status, HttpMethods.IsHead(method) ? 0 : body.Length);
        }
    }

    /// <summary>The admin's access log entry for one request (Envoy logs admin requests like any stream).</summary>
    private void LogRequest(HttpContext context, DateTimeOffset startTime, long startTimestamp, int status, long bytesSent)
    {
        var info = new Http.StreamInfo();
        info.Reset(startTime, startTimestamp);
        info.EndTimestamp = System.Diagnostics.Stopwatch.GetTimestamp();
        info.LastDownstreamTxByteSent = info.EndTimestamp;
        info.ResponseCode = status;
        info.ResponseCodeDetails = "admin_filter_response";
        info.BytesSent = bytesSent;
        info.Protocol = context.Request.Protocol;
        var connection = context.Connection;
        if (connection.RemoteIpAddress is { } remote)
        {
            info.DownstreamRemoteAddress = new IPEndPoint(remote, connection.RemotePort);
            info.DownstreamDirectRemoteAddress = info.DownstreamRemoteAddress;
        }

        if (connection.LocalIpAddress is { } local)
        {
            info.DownstreamLocalAddress = new IPEndPoint(local, connection.LocalPort);
        }

        var request = new Http.Http1.HttpRequestHead();
        request.SetMethod(context.Request.Method);
        request.SetPath(context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? context.Request.Path.Value ?? "/");
        foreach (var (name, values) in context.Request.Headers)
        {
            foreach (var value in values)
            {
                request.Headers.Add(name.ToLowerInvariant(), value ?? string.Empty);
            }
        }

        if (!request.Headers.Contains(Http.Http1.KnownHeader.Host) && context.Request.Host.HasValue)
        {
            request.Headers.Add(Http.Http1.KnownHeader.Host, context.Request.Host.Value);
        }

        var response = new Http.Http1.HttpResponseHead { StatusCode = status };
        foreach (var (name, values) in context.Response.Headers)
        {
            foreach (var value in values)
            {
                response.Headers.Add(name.ToLowerInvariant(), value ?? string.Empty);
            }
        }

        try
        {
            AccessLog.AccessLogInstance.LogAll(_server.AdminAccessLogs, new Http.Formatter.FormatterContext(info, request, response));
        }
        catch (Exception ex)
        {
            _log.Error($"admin access log failed: {ex.Message}");
        }
    }

    private ValueTask<AdminResponse> ReopenLogsAsync(HttpContext context)
    {
        _server.ReopenLogs();
        return ValueTask.FromResult(AdminResponse.Text("OK\n"));
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

    /// <summary>
    /// The home page is the live dashboard (the "admin / becomes a small live dashboard"),
    /// with Envoy's list of endpoints embedded in it; <c>/help</c> stays the plain text list.
    /// </summary>
    private ValueTask<AdminResponse> HomeAsync(HttpContext context) =>
        ValueTask.FromResult(AdminResponse.Html(_dashboard.Page(Handlers.IndexHtml())));
}
