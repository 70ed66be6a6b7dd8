using System.Globalization;
using Legate.Config;
using Legate.Router.Matching;
using Legate.Server.Logging;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Legate.Http;

/// <summary>
/// The HTTP connection manager of one filter chain: picks the virtual host and route and acts on
/// direct responses. Interim: the HTTP filter chain, router, upstreams and local-reply mapping come
/// with the data path; until then route/redirect actions answer 503.
/// </summary>
internal sealed class HttpConnectionManager
{
    /// <summary>Envoy's default <c>server_name</c>.</summary>
    public const string DefaultServerName = "envoy";

    private readonly RouteTable _routes;
    private readonly Logger _log;
    private readonly bool _stripAnyHostPort;
    private readonly bool _stripMatchingHostPort;

    private HttpConnectionManager(Hcm config, RouteTable routes, Logger log)
    {
        _routes = routes;
        _log = log;
        StatPrefix = config.StatPrefix;
        ServerName = config.ServerName.Length > 0 ? config.ServerName : DefaultServerName;
        ServerHeaderTransformation = config.ServerHeaderTransformation;
        _stripAnyHostPort = config.StripPortModeCase == Hcm.StripPortModeOneofCase.StripAnyHostPort && config.StripAnyHostPort;
        _stripMatchingHostPort = config.StripMatchingHostPort;
        // Without TLS there is no ALPN, and Kestrel cannot sniff the HTTP/2 preface next to HTTP/1.1
        // (it falls back to HTTP/1.1 with a warning). So AUTO serves HTTP/1.1 for now, and
        // codec_type HTTP2 serves HTTP/2 with prior knowledge (h2c) only.
        Protocols = config.CodecType == Hcm.Types.CodecType.Http2 ? HttpProtocols.Http2 : HttpProtocols.Http1;
    }

    public string StatPrefix { get; }

    /// <summary>The <c>server</c> response header value.</summary>
    public string ServerName { get; }

    public Hcm.Types.ServerHeaderTransformation ServerHeaderTransformation { get; }

    /// <summary>The HTTP versions the codec speaks (cleartext: AUTO and HTTP1 speak HTTP/1.1, HTTP2 speaks h2c).</summary>
    public HttpProtocols Protocols { get; }

    public static HttpConnectionManager Compile(Hcm config, string path, ConfigErrors errors, Logger log)
    {
        if (config.CodecType == Hcm.Types.CodecType.Http3)
        {
            errors.Add(FieldPath.Field(path, "codec_type"), "HTTP3 is not implemented yet");
        }

        RouteTable routes;
        switch (config.RouteSpecifierCase)
        {
            case Hcm.RouteSpecifierOneofCase.RouteConfig:
                routes = RouteTable.Compile(config.RouteConfig, FieldPath.Field(path, "route_config"), errors);
                break;
            case Hcm.RouteSpecifierOneofCase.Rds:
                errors.Warn(FieldPath.Field(path, "rds"), "RDS is not implemented yet; every request is answered 404 (NR)");
                routes = RouteTable.Empty;
                break;
            case Hcm.RouteSpecifierOneofCase.ScopedRoutes:
                errors.Warn(FieldPath.Field(path, "scoped_routes"), "scoped routes are not implemented yet; every request is answered 404 (NR)");
                routes = RouteTable.Empty;
                break;
            default:
                errors.Add(path, "one of route_config, rds or scoped_routes is required");
                routes = RouteTable.Empty;
                break;
        }

        // HTTP filters: the loader's extension check has rejected every filter Legate does not
        // implement (an is_optional one is skipped with a warning there), leaving the router.
        return new HttpConnectionManager(config, routes, log);
    }

    /// <summary>Handles one request (HTTP/1.1 or HTTP/2 stream).</summary>
    public Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var host = request.Host.Value ?? string.Empty;
        if (_stripAnyHostPort || (_stripMatchingHostPort && MatchesLocalPort(host, context.Connection.LocalPort)))
        {
            host = RouteTable.HostWithoutPort(host);
        }

        var input = new RouteMatchInput(request.Method, RequestTarget(context), host, new RequestHeaderLookup(request.Headers), (ulong)Random.Shared.NextInt64());
        var (virtualHost, route) = _routes.Match(input);
        if (route is null)
        {
            // Envoy's NR (no route): 404 with an empty body.
            return RespondAsync(context, StatusCodes.Status404NotFound, []);
        }

        if (route.Action == RouteActionKind.DirectResponse)
        {
            return RespondAsync(context, route.Status, route.Body);
        }

        if (route.FirstNotImplementedHit())
        {
            _log.Warn($"route '{route.Name}' in virtual host '{virtualHost}': '{route.ActionName}' action is not implemented yet; answering 503");
        }

        return RespondAsync(context, StatusCodes.Status503ServiceUnavailable, "route action not implemented yet"u8.ToArray());
    }

    private async Task RespondAsync(HttpContext context, int status, byte[] body)
    {
        var response = context.Response;
        response.StatusCode = status;

        // Nothing came from an upstream, so OVERWRITE and APPEND_IF_ABSENT both set the header.
        if (ServerHeaderTransformation != Hcm.Types.ServerHeaderTransformation.PassThrough)
        {
            response.Headers.Server = ServerName;
        }

        var mayHaveBody = status >= 200 && status != StatusCodes.Status204NoContent && status != StatusCodes.Status304NotModified;
        if (!mayHaveBody)
        {
            return;
        }

        response.ContentLength = body.Length;
        if (body.Length > 0)
        {
            response.ContentType = "text/plain";
            if (!HttpMethods.IsHead(context.Request.Method))
            {
                await response.Body.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The request target's path and query as sent (not decoded, not normalized).</summary>
    private static string RequestTarget(HttpContext context)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (string.IsNullOrEmpty(raw) || raw[0] != '/')
        {
            // Absolute-form ("http://host/p") or asterisk-form targets: Kestrel split them already.
            var path = context.Request.PathBase.Add(context.Request.Path).ToUriComponent() is { Length: > 0 } p ? p : "/";
            return path + context.Request.QueryString.ToUriComponent();
        }

        var fragment = raw.IndexOf('#');
        return fragment < 0 ? raw : raw[..fragment];
    }

    /// <summary>Route header matchers read Kestrel's request headers through this.</summary>
    private sealed class RequestHeaderLookup(IHeaderDictionary headers) : IHeaderLookup
    {
        public int Count(string name) => headers.TryGetValue(name, out var values) ? values.Count : 0;

        public string Get(string name, int index) => headers[name][index] ?? string.Empty;
    }

    private static bool MatchesLocalPort(string host, int localPort)
    {
        var withoutPort = RouteTable.HostWithoutPort(host);
        return withoutPort.Length < host.Length
            && int.TryParse(host.AsSpan(withoutPort.Length + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            && port == localPort;
    }
}
