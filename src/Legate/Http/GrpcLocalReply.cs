using System.Globalization;
using System.Text;
using Legate.Http.Http1;

namespace Legate.Http;

/// <summary>
/// The gRPC form of a local reply (Envoy's Utility::prepareLocalReply for gRPC requests): status
/// 200, <c>content-type: application/grpc</c>, <c>grpc-status</c> and a percent-encoded
/// <c>grpc-message</c> in the head, no body, so the client sees a trailers-only response.
/// </summary>
internal static class GrpcLocalReply
{
    private static readonly byte[] s_grpcContentType = "application/grpc"u8.ToArray();

    public static void Apply(HttpResponseHead head, int httpStatus, int? grpcStatus, byte[] body)
    {
        head.StatusCode = 200;
        head.Headers.Remove(KnownHeader.ContentLength);
        head.Headers.Set(KnownHeader.ContentType, s_grpcContentType);
        if (!head.Headers.Contains("grpc-status"))
        {
            head.Headers.Set("grpc-status", (grpcStatus ?? FromHttpStatus(httpStatus)).ToString(CultureInfo.InvariantCulture));
        }

        var message = body.AsSpan();
        if (message is [.., (byte)'\n'])
        {
            // A JSON body format ends in a newline; a header value cannot.
            message = message[..^1];
        }

        if (message.Length > 0)
        {
            head.Headers.Set("grpc-message", PercentEncode(message));
        }
    }

    /// <summary>Envoy's Grpc::Utility::httpToGrpcStatus.</summary>
    public static int FromHttpStatus(int httpStatus) => httpStatus switch
    {
        400 => 13, // INTERNAL
        401 => 16, // UNAUTHENTICATED
        403 => 7, // PERMISSION_DENIED
        404 => 12, // UNIMPLEMENTED
        429 or 502 or 503 or 504 => 14, // UNAVAILABLE
        _ => 2, // UNKNOWN
    };

    /// <summary>Percent-encodes bytes outside printable ASCII and '%' (the grpc-message rule).</summary>
    public static string PercentEncode(ReadOnlySpan<byte> value)
    {
        var output = new StringBuilder(value.Length);
        foreach (var b in value)
        {
            if (b is < 0x20 or > 0x7E or (byte)'%')
            {
                output.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
            else
            {
                output.Append((char)b);
            }
        }

        return output.ToString();
    }
}
