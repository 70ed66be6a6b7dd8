namespace Legate.Upstream;

/// <summary>The HTTP version a cluster speaks to its hosts (<c>envoy.extensions.upstreams.http.v3.HttpProtocolOptions</c>).</summary>
internal enum UpstreamProtocol
{
    Http1,
    Http2,

    /// <summary><c>use_downstream_protocol_config</c>: the downstream request's version.</summary>
    UseDownstream,
}
