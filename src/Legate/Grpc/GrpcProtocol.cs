using System.Buffers.Binary;
using System.Globalization;
using System.Net;

namespace Legate.Grpc;

/// <summary>
/// gRPC over HTTP/2 wire details shared by client and server: the 5-byte message prefix
/// (compressed flag, big-endian length), <c>grpc-timeout</c>, <c>grpc-message</c>
/// percent-encoding, and the HTTP status → gRPC status mapping for responses that are not gRPC.
/// </summary>
internal static class GrpcProtocol
{
    public const string ContentType = "application/grpc";
    public const int PrefixLength = 5;

    /// <summary>The default largest message accepted (gRPC's 4 MiB default), protecting against a bogus length.</summary>
    public const int DefaultMaxMessageBytes = 4 * 1024 * 1024;

    /// <summary>Writes the prefix for an uncompressed message of <paramref name="length"/> bytes.</summary>
    public static void WritePrefix(Span<byte> destination, int length)
    {
        destination[0] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], (uint)length);
    }

    /// <summary>The length of the message a prefix announces; throws on compressed messages (compression is off).</summary>
    public static int ReadPrefix(ReadOnlySpan<byte> prefix, int maxMessageBytes)
    {
        if (prefix[0] != 0)
        {
            // We never advertise grpc-accept-encoding, so a compressed message is a protocol error.
            throw new GrpcException(GrpcStatusCode.Internal, "received a compressed message, but compression is not enabled");
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(prefix[1..]);
        if (length > (uint)maxMessageBytes)
        {
            throw new GrpcException(GrpcStatusCode.ResourceExhausted, $"received message larger than max ({length} vs. {maxMessageBytes})");
        }

        return (int)length;
    }

    /// <summary>The <c>grpc-timeout</c> value for <paramref name="timeout"/>: at most 8 digits, in the finest unit that fits.</summary>
    public static string FormatTimeout(TimeSpan timeout)
    {
        var ticks = Math.Max(0, timeout.Ticks);
        var micros = ticks / 10;
        if (micros < 100_000_000)
        {
            return micros.ToString(CultureInfo.InvariantCulture) + "u";
        }

        var millis = ticks / TimeSpan.TicksPerMillisecond;
        if (millis < 100_000_000)
        {
            return millis.ToString(CultureInfo.InvariantCulture) + "m";
        }

        var seconds = ticks / TimeSpan.TicksPerSecond;
        return seconds < 100_000_000 ? seconds.ToString(CultureInfo.InvariantCulture) + "S" : Math.Min(seconds / 3600, 99_999_999).ToString(CultureInfo.InvariantCulture) + "H";
    }

    /// <summary>Parses <c>grpc-timeout</c> (digits + H/M/S/m/u/n); null when malformed.</summary>
    public static TimeSpan? ParseTimeout(string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Length < 2 || value.Length > 9
            || !long.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
        {
            return null;
        }

        return value[^1] switch
        {
            'H' => TimeSpan.FromHours(amount),
            'M' => TimeSpan.FromMinutes(amount),
            'S' => TimeSpan.FromSeconds(amount),
            'm' => TimeSpan.FromMilliseconds(amount),
            'u' => TimeSpan.FromTicks(amount * 10),
            'n' => TimeSpan.FromTicks(amount / 100),
            _ => null,
        };
    }

    /// <summary><c>grpc-message</c> is percent-encoded UTF-8 (everything outside printable ASCII, and '%').</summary>
    public static string EncodeMessage(string message)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(message);
        var builder = new System.Text.StringBuilder(bytes.Length);
        foreach (var b in bytes)
        {
            if (b is >= 0x20 and <= 0x7e && b != (byte)'%')
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return builder.ToString();
    }

    public static string DecodeMessage(string? value) =>
        string.IsNullOrEmpty(value) ? string.Empty : Uri.UnescapeDataString(value);

    /// <summary>gRPC's mapping for an HTTP response that carries no grpc-status.</summary>
    public static GrpcStatusCode FromHttpStatus(HttpStatusCode status) => (int)status switch
    {
        400 => GrpcStatusCode.Internal,
        401 => GrpcStatusCode.Unauthenticated,
        403 => GrpcStatusCode.PermissionDenied,
        404 => GrpcStatusCode.Unimplemented,
        429 or 502 or 503 or 504 => GrpcStatusCode.Unavailable,
        _ => GrpcStatusCode.Unknown,
    };

    /// <summary>Parses a <c>grpc-status</c> value; unparsable values are Unknown, as gRPC does.</summary>
    public static GrpcStatusCode ParseStatus(string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var code) && code is >= 0 and <= 16
            ? (GrpcStatusCode)code
            : GrpcStatusCode.Unknown;
}
