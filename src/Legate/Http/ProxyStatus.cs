using System.Text;
using Legate.Http.Http1;
using ProxyStatusProto = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager.Types.ProxyStatusConfig;

namespace Legate.Http;

/// <summary>
/// The HTTP connection manager's <c>proxy_status_config</c>: a response that carries a response
/// flag Envoy maps to an RFC 9209 error gets a <c>Proxy-Status</c> header,
/// <c>&lt;proxy name&gt;; error=&lt;error&gt;; details="&lt;details&gt;; &lt;flags&gt;"</c>, appended to
/// one the upstream sent; with <c>set_recommended_response_code</c> the status becomes the RFC's
/// recommendation for that error. Envoy's ProxyStatusUtils (with its larger flag mapping).
/// </summary>
internal sealed class ProxyStatus
{
    private readonly string _proxyName;
    private readonly bool _removeDetails;
    private readonly bool _removeTerminationDetails;
    private readonly bool _removeFlags;
    private readonly bool _setRecommendedCode;

    private ProxyStatus(string proxyName, ProxyStatusProto config)
    {
        _proxyName = proxyName;
        _removeDetails = config.RemoveDetails;
        _removeTerminationDetails = config.RemoveConnectionTerminationDetails;
        _removeFlags = config.RemoveResponseFlags;
        _setRecommendedCode = config.SetRecommendedResponseCode;
    }

    /// <summary>Null without <c>proxy_status_config</c>. The proxy name: the literal one, the node id, else the server name.</summary>
    public static ProxyStatus? Create(ProxyStatusProto? config, string serverName, string nodeId) => config switch
    {
        null => null,
        { ProxyNameCase: ProxyStatusProto.ProxyNameOneofCase.LiteralProxyName } => new ProxyStatus(config.LiteralProxyName, config),
        { ProxyNameCase: ProxyStatusProto.ProxyNameOneofCase.UseNodeId, UseNodeId: true } => new ProxyStatus(nodeId, config),
        _ => new ProxyStatus(serverName, config),
    };

    public void Apply(StreamInfo info, HttpResponseHead head)
    {
        if (info.ResponseFlags == ResponseFlags.None || ErrorOf(info.ResponseFlags) is not { } error)
        {
            return;
        }

        var value = new StringBuilder(_proxyName).Append("; error=").Append(error.Name);
        if (!_removeDetails && info.ResponseCodeDetails is { } details)
        {
            var text = new StringBuilder(details);
            if (!_removeTerminationDetails && info.ConnectionTerminationDetails is { } termination)
            {
                text.Append("; ").Append(termination);
            }

            if (!_removeFlags)
            {
                text.Append("; ").Append(ResponseFlagNames.Format(info.ResponseFlags));
            }

            value.Append("; details=\"").Append(Escape(text.ToString())).Append('"');
        }

        var existing = head.Headers.GetValue("proxy-status");
        head.Headers.Set("proxy-status", existing is { Length: > 0 } ? existing + ", " + value : value.ToString());
        if (_setRecommendedCode && error.Recommended is { } status)
        {
            head.StatusCode = status;
        }
    }

    /// <summary>Envoy's fromStreamInfo: the first flag, in Envoy's order, that maps to an error (and the RFC's recommended status).</summary>
    internal static (string Name, int? Recommended)? ErrorOf(ResponseFlags flags)
    {
        foreach (var (flag, name) in s_order)
        {
            if ((flags & flag) != 0)
            {
                return (name, Recommended(name));
            }
        }

        return null;
    }

    private static readonly (ResponseFlags Flag, string Error)[] s_order =
    [
        (ResponseFlags.FailedLocalHealthCheck, "destination_unavailable"),
        (ResponseFlags.NoHealthyUpstream, "destination_unavailable"),
        (ResponseFlags.UpstreamRequestTimeout, "http_response_timeout"),
        (ResponseFlags.DurationTimeout, "connection_timeout"),
        (ResponseFlags.LocalReset, "connection_timeout"),
        (ResponseFlags.UpstreamRemoteReset, "connection_terminated"),
        (ResponseFlags.UpstreamConnectionFailure, "connection_refused"),
        (ResponseFlags.UnauthorizedExternalService, "connection_refused"),
        (ResponseFlags.UpstreamConnectionTermination, "connection_terminated"),
        (ResponseFlags.OverloadManagerTerminated, "connection_limit_reached"),
        (ResponseFlags.DropOverload, "connection_limit_reached"),
        (ResponseFlags.FaultInjected, "http_request_error"),
        (ResponseFlags.DownstreamConnectionTermination, "connection_terminated"),
        (ResponseFlags.DownstreamRemoteReset, "connection_terminated"),
        (ResponseFlags.UpstreamOverflow, "connection_limit_reached"),
        (ResponseFlags.NoRouteFound, "destination_not_found"),
        (ResponseFlags.RateLimited, "connection_limit_reached"),
        (ResponseFlags.RateLimitServiceError, "connection_limit_reached"),
        (ResponseFlags.UpstreamRetryLimitExceeded, "destination_unavailable"),
        (ResponseFlags.StreamIdleTimeout, "http_response_timeout"),
        (ResponseFlags.InvalidEnvoyRequestHeaders, "http_request_error"),
        (ResponseFlags.DownstreamProtocolError, "http_request_error"),
        (ResponseFlags.UpstreamMaxStreamDurationReached, "http_response_timeout"),
        (ResponseFlags.NoFilterConfigFound, "proxy_configuration_error"),
        (ResponseFlags.UpstreamProtocolError, "http_protocol_error"),
        (ResponseFlags.NoClusterFound, "destination_unavailable"),
        (ResponseFlags.DnsResolutionFailed, "dns_error"),
    ];

    /// <summary>The RFC's recommended status per error (Envoy's recommendedHttpStatusCode), for the errors above.</summary>
    private static int? Recommended(string error) => error switch
    {
        "connection_timeout" or "http_response_timeout" => 504,
        "dns_error" or "connection_refused" or "connection_terminated" or "http_protocol_error" => 502,
        "destination_not_found" or "proxy_configuration_error" => 500,
        "destination_unavailable" or "connection_limit_reached" => 503,
        _ => null,
    };

    /// <summary>Envoy's StringUtil::escape: backslash, quote and control characters as C escapes.</summary>
    private static string Escape(string text)
    {
        if (text.AsSpan().IndexOfAny("\\\"\n\r\t") < 0)
        {
            return text;
        }

        var escaped = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            escaped.Append(c switch
            {
                '\\' => "\\\\",
                '"' => "\\\"",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ => c.ToString(),
            });
        }

        return escaped.ToString();
    }
}
