using System.Globalization;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Server.Logging;
using Microsoft.AspNetCore.Http;

namespace Legate.Xds.Server;

/// <summary>
/// The management server's REST-JSON endpoints (Envoy's <c>api_type: REST</c>): a POST of a JSON
/// DiscoveryRequest to <c>/v3/discovery:clusters</c> (listeners, routes, endpoints, secrets,
/// runtime) is answered with the type's current resources as a JSON DiscoveryResponse — every
/// resource for the wildcard types (CDS, LDS), the named ones for the others. A CDS or LDS request
/// whose version_info is the current version and that carries no error_detail is answered 304 Not
/// Modified (nothing new since the client's last accepted response); the named types always get
/// the resources they name. REST is stateless, so the
/// ACK/NACK a client's request carries about its previous response is logged as for the gRPC
/// streams, once per client, type and version.
/// </summary>
internal sealed class RestDiscoveryHandler
{
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true).WithTypeRegistry(ApiTypes.Registry));
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithTypeRegistry(ApiTypes.Registry));

    private readonly Func<XdsResourceType, (int Version, Dictionary<string, Any> Resources)> _state;
    private readonly Func<string> _nonce;
    private readonly Logger _log;
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Node, string Type), string> _acknowledged = new();

    public RestDiscoveryHandler(Func<XdsResourceType, (int Version, Dictionary<string, Any> Resources)> state, Func<string> nonce, Logger log)
    {
        _state = state;
        _nonce = nonce;
        _log = log;
    }

    public async Task HandleAsync(HttpContext context)
    {
        var response = context.Response;
        var path = context.Request.Path.Value ?? string.Empty;
        var type = Array.Find(XdsResourceType.All, t => t.RestPath == path);
        if (type is null)
        {
            response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        if (!HttpMethods.IsPost(context.Request.Method))
        {
            response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            response.Headers.Allow = "POST";
            return;
        }

        DiscoveryRequest request;
        try
        {
            using var reader = new StreamReader(context.Request.Body);
            request = Parser.Parse<DiscoveryRequest>(await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false));
        }
        catch (Exception ex) when (ex is InvalidProtocolBufferException or InvalidJsonException)
        {
            await Answer(response, StatusCodes.Status400BadRequest, "text/plain", "invalid DiscoveryRequest: " + ex.Message, context.RequestAborted).ConfigureAwait(false);
            return;
        }

        if (request.TypeUrl.Length > 0 && request.TypeUrl != type.TypeUrl)
        {
            await Answer(response, StatusCodes.Status400BadRequest, "text/plain", $"type_url {request.TypeUrl} posted to {path}", context.RequestAborted).ConfigureAwait(false);
            return;
        }

        var node = request.Node?.Id ?? string.Empty;
        LogAcknowledgement(node, type, request);
        var (version, resources) = _state(type);
        var versionText = version.ToString(CultureInfo.InvariantCulture);
        // Not Modified only for the wildcard types: a named type's request at the current version
        // may name resources it did not have (a new EDS cluster), and REST keeps no per-client state
        // to tell; answering those was a cluster left without endpoints.
        if (type.IsWildcard && request.VersionInfo == versionText && request.ErrorDetail is null)
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return;
        }

        var names = type.IsWildcard ? null : new HashSet<string>(request.ResourceNames, StringComparer.Ordinal);
        var answer = new DiscoveryResponse { TypeUrl = type.TypeUrl, VersionInfo = versionText, Nonce = _nonce() };
        foreach (var (name, resource) in resources.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            if (names is null || names.Contains(name))
            {
                answer.Resources.Add(resource);
            }
        }

        await Answer(response, StatusCodes.Status200OK, "application/json", Formatter.Format(answer), context.RequestAborted).ConfigureAwait(false);
    }

    private void LogAcknowledgement(string node, XdsResourceType type, DiscoveryRequest request)
    {
        if (request.ErrorDetail is { } error)
        {
            _log.Warn($"xds-server: client '{node}' NACK {type.ShortName} over REST (keeps version '{request.VersionInfo}'): {error.Message}");
            return;
        }

        if (request.VersionInfo.Length == 0)
        {
            return;
        }

        lock (_lock)
        {
            if (_acknowledged.TryGetValue((node, type.ShortName), out var logged) && logged == request.VersionInfo)
            {
                return; // the same ACK again on each poll
            }

            _acknowledged[(node, type.ShortName)] = request.VersionInfo;
        }

        _log.Info($"xds-server: client '{node}' ACK {type.ShortName} version '{request.VersionInfo}' over REST");
    }

    private static async Task Answer(HttpResponse response, int status, string contentType, string body, CancellationToken cancellationToken)
    {
        response.StatusCode = status;
        response.ContentType = contentType;
        await response.WriteAsync(body, cancellationToken).ConfigureAwait(false);
    }
}
