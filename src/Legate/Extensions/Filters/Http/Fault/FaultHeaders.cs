using System.Buffers.Text;

namespace Legate.Extensions.Filters.Http.Fault;

/// <summary>The request headers that control header_delay / header_abort / header_limit faults (Envoy's names).</summary>
internal static class FaultHeaders
{
    public const string DelayRequest = "x-envoy-fault-delay-request";
    public const string DelayRequestPercentage = "x-envoy-fault-delay-request-percentage";
    public const string AbortRequest = "x-envoy-fault-abort-request";
    public const string AbortGrpcRequest = "x-envoy-fault-abort-grpc-request";
    public const string AbortRequestPercentage = "x-envoy-fault-abort-request-percentage";
    public const string ThrottleResponseBandwidth = "x-envoy-throttle-response-bandwidth";
    public const string ThrottleResponseBandwidthPercentage = "x-envoy-throttle-response-bandwidth-percentage";
    public const string DownstreamServiceCluster = "x-envoy-downstream-service-cluster";
    public const string DownstreamServiceNode = "x-envoy-downstream-service-node";

    /// <summary>absl::SimpleAtoi for an unsigned value: optional surrounding whitespace, optional '+', digits only.</summary>
    public static bool TryParseUnsigned(ReadOnlySpan<byte> text, out ulong value)
    {
        text = text[System.Text.Ascii.Trim(text)];
        if (text.Length > 0 && text[0] == (byte)'+')
        {
            text = text[1..];
        }

        if (text.Length == 0 || text[0] is < (byte)'0' or > (byte)'9')
        {
            value = 0;
            return false;
        }

        return Utf8Parser.TryParse(text, out value, out var consumed) && consumed == text.Length;
    }
}
