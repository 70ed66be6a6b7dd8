namespace Legate.Tracing;

/// <summary>Envoy's standard span tag names and values (<c>Tracing::Tags</c>).</summary>
internal static class Tags
{
    public const string Component = "component";
    public const string Proxy = "proxy";
    public const string NodeId = "node_id";
    public const string Zone = "zone";
    public const string GuidXRequestId = "guid:x-request-id";
    public const string GuidXClientTraceId = "guid:x-client-trace-id";
    public const string HttpUrl = "http.url";
    public const string HttpMethod = "http.method";
    public const string HttpProtocol = "http.protocol";
    public const string HttpStatusCode = "http.status_code";
    public const string DownstreamCluster = "downstream_cluster";
    public const string UserAgent = "user_agent";
    public const string PeerAddress = "peer.address";
    public const string RequestSize = "request_size";
    public const string ResponseSize = "response_size";
    public const string ResponseFlags = "response_flags";
    public const string UpstreamCluster = "upstream_cluster";
    public const string UpstreamClusterName = "upstream_cluster.name";
    public const string UpstreamAddress = "upstream_address";
    public const string RetryCount = "retry.count";
    public const string GrpcPath = "grpc.path";
    public const string GrpcAuthority = "grpc.authority";
    public const string GrpcContentType = "grpc.content_type";
    public const string GrpcTimeout = "grpc.timeout";
    public const string GrpcStatusCode = "grpc.status_code";
    public const string GrpcMessage = "grpc.message";
    public const string Error = "error";
    public const string True = "true";
}
