namespace Legate.Server.Logging;

/// <summary>
/// The logger ("component") names, as Envoy names them, so that <c>--component-log-level</c>
/// and the <c>%n</c> field of a log line mean the same thing for both proxies.
/// </summary>
internal static class LogComponents
{
    public const string Admin = "admin";
    public const string Config = "config";
    public const string Connection = "connection";
    public const string File = "file";
    public const string Http = "http";
    public const string Http2 = "http2";
    public const string Listener = "listener";
    public const string Main = "main";
    public const string Misc = "misc";
    public const string Router = "router";
    public const string Runtime = "runtime";
    public const string Stats = "stats";
    public const string Tracing = "tracing";
    public const string Upstream = "upstream";

    /// <summary>Every name <c>--component-log-level</c> accepts (Envoy's logger ids, sorted).</summary>
    public static readonly IReadOnlyList<string> All =
    [
        "admin", "alternate_protocols_cache", "aws", "assert", "backtrace", "basic_auth", "cache_filter",
        "client", "config", "connection", "conn_handler", "compression", "credential_injector",
        "decompression", "dns", "dubbo", "envoy_bug", "ext_authz", "ext_proc", "file", "filter",
        "forward_proxy", "geolocation", "grpc", "happy_eyeballs", "hc", "health_checker", "http", "http2",
        "hystrix", "init", "io", "jwt", "kafka", "key_value_store", "listener", "lua", "main", "matcher",
        "misc", "mongo", "multi_connection", "oauth2", "pool", "quic", "quic_stream", "rate_limit_quota",
        "rbac", "rds", "redis", "rocketmq", "router", "runtime", "secret", "stats", "tap", "testing",
        "thrift", "tracing", "udp", "upstream", "wasm", "websocket",
    ];

    private static readonly HashSet<string> s_known = new(All, StringComparer.Ordinal);

    public static bool IsKnown(string name) => s_known.Contains(name);
}
