using Legate.Http.Formatter;
using Legate.Http.Http1;

namespace Legate.Http;

/// <summary>
/// The gRPC status of a finished stream as Envoy reads it (<c>Grpc::Common::getGrpcStatus</c>):
/// <c>grpc-status</c> from the trailers, else from the headers (trailers-only responses), else
/// the HTTP status mapped to a gRPC status. Only for gRPC requests.
/// </summary>
internal static class GrpcStatus
{
    private static readonly string[] s_camel =
    [
        "Ok", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
        "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
        "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
    ];

    private static readonly string[] s_snake =
    [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ];

    /// <summary>The status, or null when the request is not gRPC or nothing tells a status.</summary>
    public static int? Of(in FormatterContext context)
    {
        if (context.Request is not { } request || !IsGrpc(request.Headers))
        {
            return null;
        }

        return Read(context.ResponseTrailers) ?? Read(context.Response?.Headers)
            ?? (context.Info.ResponseCode > 0 ? FromHttpStatus(context.Info.ResponseCode) : null);
    }

    /// <summary>Envoy's CAMEL_STRING name (the number for statuses past 16).</summary>
    public static string CamelName(int status) => (uint)status < s_camel.Length ? s_camel[status] : status.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Envoy's SNAKE_STRING name (the number for statuses past 16).</summary>
    public static string SnakeName(int status) => (uint)status < s_snake.Length ? s_snake[status] : status.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Parses a name (either spelling) from config, e.g. grpc_status_filter.</summary>
    public static int IndexOfSnakeName(string name) => Array.IndexOf(s_snake, name);

    /// <summary>gRPC's HTTP-to-status mapping, as Envoy's <c>httpToGrpcStatus</c>.</summary>
    public static int FromHttpStatus(int httpStatus) => httpStatus switch
    {
        400 => 13, // Internal
        401 => 16, // Unauthenticated
        403 => 7, // PermissionDenied
        404 => 12, // Unimplemented
        429 or 502 or 503 or 504 => 14, // Unavailable
        _ => 2, // Unknown
    };

    /// <summary>Envoy's isGrpcRequestHeaders: content-type <c>application/grpc</c>, alone or followed by <c>+</c> or <c>;</c>.</summary>
    public static bool IsGrpcRequest(HttpHeaderMap headers)
    {
        const string grpc = "application/grpc";
        if (headers.GetValue("content-type") is not { } contentType || !contentType.StartsWith(grpc, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        return contentType.Length == grpc.Length || contentType[grpc.Length] is '+' or ';';
    }

    private static bool IsGrpc(HttpHeaderMap headers) =>
        headers.TryGetValue(KnownHeader.ContentType, out ReadOnlySpan<byte> type) && type.StartsWith("application/grpc"u8);

    private static int? Read(HttpHeaderMap? headers)
    {
        if (headers is null)
        {
            return null;
        }

        var index = headers.IndexOf("grpc-status".AsSpan());
        if (index < 0)
        {
            return null;
        }

        return System.Buffers.Text.Utf8Parser.TryParse(headers.GetValueBytes(index), out int status, out var consumed) && consumed == headers.GetValueBytes(index).Length && status >= 0
            ? status
            : null;
    }
}
