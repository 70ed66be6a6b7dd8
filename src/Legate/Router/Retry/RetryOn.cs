namespace Legate.Router.Retry;

/// <summary>Envoy's retry conditions (<c>retry_on</c>, <c>x-envoy-retry-on</c>, <c>x-envoy-retry-grpc-on</c>).</summary>
[Flags]
internal enum RetryOn
{
    None = 0,
    FiveXx = 1 << 0,
    GatewayError = 1 << 1,
    Reset = 1 << 2,
    ConnectFailure = 1 << 3,
    EnvoyRateLimited = 1 << 4,
    Retriable4xx = 1 << 5,
    RefusedStream = 1 << 6,
    RetriableStatusCodes = 1 << 7,
    RetriableHeaders = 1 << 8,
    ResetBeforeRequest = 1 << 9,
    Http3PostConnectFailure = 1 << 10,
    GrpcCancelled = 1 << 11,
    GrpcDeadlineExceeded = 1 << 12,
    GrpcInternal = 1 << 13,
    GrpcResourceExhausted = 1 << 14,
    GrpcUnavailable = 1 << 15,
}

/// <summary>Parses the comma-separated condition lists.</summary>
internal static class RetryOnParser
{
    /// <summary>Parses <paramref name="list"/>; unknown names go to <paramref name="unknown"/> (Envoy ignores them in headers, rejects them in config).</summary>
    public static RetryOn Parse(ReadOnlySpan<char> list, bool grpc, List<string>? unknown = null)
    {
        var result = RetryOn.None;
        foreach (var range in list.Split(','))
        {
            var name = list[range].Trim();
            if (name.IsEmpty)
            {
                continue;
            }

            var flag = grpc ? Grpc(name) : Http(name);
            if (flag == RetryOn.None)
            {
                // retry_on in config may mix both kinds (Envoy's route retry_on accepts the gRPC names too).
                flag = grpc ? Http(name) : Grpc(name);
            }

            if (flag == RetryOn.None)
            {
                unknown?.Add(name.ToString());
            }

            result |= flag;
        }

        return result;
    }

    /// <summary>
    /// Whether every entry of an <c>x-envoy-retry-on</c> (<paramref name="grpc"/> false) or
    /// <c>x-envoy-retry-grpc-on</c> list is one of that header's own names (spaces around entries
    /// and empty entries allowed): the router's <c>strict_check_headers</c>.
    /// </summary>
    public static bool IsStrictlyValid(ReadOnlySpan<char> list, bool grpc)
    {
        foreach (var range in list.Split(','))
        {
            var name = list[range].Trim();
            if (!name.IsEmpty && (grpc ? Grpc(name) : Http(name)) == RetryOn.None)
            {
                return false;
            }
        }

        return true;
    }

    private static RetryOn Http(ReadOnlySpan<char> name) => name switch
    {
        "5xx" => RetryOn.FiveXx,
        "gateway-error" => RetryOn.GatewayError,
        "reset" => RetryOn.Reset,
        "reset-before-request" => RetryOn.ResetBeforeRequest,
        "connect-failure" => RetryOn.ConnectFailure,
        "envoy-ratelimited" => RetryOn.EnvoyRateLimited,
        "retriable-4xx" => RetryOn.Retriable4xx,
        "refused-stream" => RetryOn.RefusedStream,
        "retriable-status-codes" => RetryOn.RetriableStatusCodes,
        "retriable-headers" => RetryOn.RetriableHeaders,
        "http3-post-connect-failure" => RetryOn.Http3PostConnectFailure,
        _ => RetryOn.None,
    };

    private static RetryOn Grpc(ReadOnlySpan<char> name) => name switch
    {
        "cancelled" => RetryOn.GrpcCancelled,
        "deadline-exceeded" => RetryOn.GrpcDeadlineExceeded,
        "internal" => RetryOn.GrpcInternal,
        "resource-exhausted" => RetryOn.GrpcResourceExhausted,
        "unavailable" => RetryOn.GrpcUnavailable,
        _ => RetryOn.None,
    };
}
