using System.Numerics;
using System.Text;

namespace Legate.Http;

/// <summary>Envoy's short (<c>UH</c>) and long (<c>NoHealthyUpstream</c>) names of <see cref="ResponseFlags"/>.</summary>
internal static class ResponseFlagNames
{
    private static readonly string[] s_short =
    [
        "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC", "URX",
        "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DO", "DR", "UDO",
    ];

    private static readonly string[] s_long =
    [
        "FailedLocalHealthCheck", "NoHealthyUpstream", "UpstreamRequestTimeout", "LocalReset", "UpstreamRemoteReset",
        "UpstreamConnectionFailure", "UpstreamConnectionTermination", "UpstreamOverflow", "NoRouteFound", "DelayInjected",
        "FaultInjected", "RateLimited", "UnauthorizedExternalService", "RateLimitServiceError", "DownstreamConnectionTermination",
        "UpstreamRetryLimitExceeded", "StreamIdleTimeout", "InvalidEnvoyRequestHeaders", "DownstreamProtocolError",
        "UpstreamMaxStreamDurationReached", "ResponseFromCacheFilter", "NoFilterConfigFound", "DurationTimeout",
        "UpstreamProtocolError", "NoClusterFound", "OverloadManagerTerminated", "DnsResolutionFailed", "DropOverload",
        "DownstreamRemoteReset", "UnconditionalDropOverload",
    ];

    /// <summary>The number of flags Envoy defines.</summary>
    public static int Count => s_short.Length;

    public static string ShortName(ResponseFlags flag) => s_short[BitOperations.TrailingZeroCount((long)flag)];

    public static string LongName(ResponseFlags flag) => s_long[BitOperations.TrailingZeroCount((long)flag)];

    /// <summary><c>%RESPONSE_FLAGS%</c>: short names joined by commas in Envoy's order, or "-" when none is set.</summary>
    public static string Format(ResponseFlags flags) => Join(flags, s_short, ",");

    /// <summary><c>%RESPONSE_FLAGS_LONG%</c>: long names joined by commas, or "-".</summary>
    public static string FormatLong(ResponseFlags flags) => Join(flags, s_long, ",");

    /// <summary>Parses a short name (as in access log filters); false when Envoy has no such flag.</summary>
    public static bool TryParseShort(string name, out ResponseFlags flag)
    {
        var index = Array.IndexOf(s_short, name);
        flag = index < 0 ? ResponseFlags.None : (ResponseFlags)(1L << index);
        return index >= 0;
    }

    private static string Join(ResponseFlags flags, string[] names, string separator)
    {
        if (flags == ResponseFlags.None)
        {
            return "-";
        }

        var bits = (long)flags;
        if (BitOperations.PopCount((ulong)bits) == 1)
        {
            return names[BitOperations.TrailingZeroCount(bits)];
        }

        var text = new StringBuilder();
        while (bits != 0)
        {
            var bit = BitOperations.TrailingZeroCount(bits);
            bits &= bits - 1;
            text.Append(text.Length == 0 ? string.Empty : separator).Append(names[bit]);
        }

        return text.ToString();
    }
}
