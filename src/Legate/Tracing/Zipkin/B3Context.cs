using Legate.Http.Http1;

namespace Legate.Tracing.Zipkin;

/// <summary>
/// A B3 span context read from a request (Envoy's zipkin SpanContextExtractor): the single
/// <c>b3</c> header (<c>{trace}-{span}[-{sampling}[-{parent}]]</c> or just the sampling state) wins
/// over the multi headers <c>x-b3-traceid</c>, <c>x-b3-spanid</c>, <c>x-b3-parentspanid</c>,
/// <c>x-b3-sampled</c> and <c>x-b3-flags</c>. Trace ids are 64 or 128 bits.
/// </summary>
internal readonly record struct B3Context(ulong TraceIdHigh, ulong TraceId, ulong SpanId, ulong ParentId, bool Sampled)
{
    public const string TraceIdHeader = "x-b3-traceid";
    public const string SpanIdHeader = "x-b3-spanid";
    public const string ParentSpanIdHeader = "x-b3-parentspanid";
    public const string SampledHeader = "x-b3-sampled";
    public const string FlagsHeader = "x-b3-flags";
    public const string SingleHeader = "b3";

    public bool Is128Bit => TraceIdHigh != 0;

    /// <summary>The sampling state the request carries, or null when it carries none (the local decision applies).</summary>
    public static bool? ExtractSampled(HttpHeaderMap headers)
    {
        if (headers.GetValue(SingleHeader) is { } b3)
        {
            // Only the sampling state, or ids followed by "-{state}".
            if (b3.Length == 1)
            {
                return SamplingState(b3[0]);
            }

            var dash = b3.IndexOf('-');
            var second = dash < 0 ? -1 : b3.IndexOf('-', dash + 1);
            return second > 0 && second + 1 < b3.Length ? SamplingState(b3[second + 1]) : null;
        }

        if (headers.GetValue(SampledHeader) is { } sampled)
        {
            // Old tracers send "true"; anything else but 1/true means not sampled.
            return sampled == "1" || sampled.Equals("true", StringComparison.OrdinalIgnoreCase);
        }

        // Debug (x-b3-flags: 1) implies sampled.
        return headers.GetValue(FlagsHeader) == "1" ? true : null;
    }

    /// <summary>
    /// Reads the context. False with <paramref name="error"/> null: the request carries none (a new
    /// trace starts); false with an error: the headers are malformed (Envoy then traces nothing).
    /// </summary>
    public static bool TryExtract(HttpHeaderMap headers, bool sampled, out B3Context context, out string? error)
    {
        context = default;
        error = null;
        if (headers.GetValue(SingleHeader) is { } b3)
        {
            return TryParseSingle(b3, sampled, out context, out error);
        }

        var traceId = headers.GetValue(TraceIdHeader);
        var spanId = headers.GetValue(SpanIdHeader);
        if (traceId is null || spanId is null)
        {
            return false;
        }

        if (!TryParseTraceId(traceId, out var high, out var low))
        {
            error = $"invalid x-b3-traceid '{traceId}'";
            return false;
        }

        if (!TryParseHex(spanId, out var span))
        {
            error = $"invalid x-b3-spanid '{spanId}'";
            return false;
        }

        ulong parent = 0;
        if (headers.GetValue(ParentSpanIdHeader) is { Length: > 0 } parentId && !TryParseHex(parentId, out parent))
        {
            error = $"invalid x-b3-parentspanid '{parentId}'";
            return false;
        }

        context = new B3Context(high, low, span, parent, sampled);
        return true;
    }

    private static bool TryParseSingle(string b3, bool sampled, out B3Context context, out string? error)
    {
        context = default;
        error = null;
        if (b3.Length == 1)
        {
            // Only a sampling state: no context to continue.
            if (SamplingState(b3[0]) is null)
            {
                error = $"invalid b3 sampling state '{b3}'";
            }

            return false;
        }

        var parts = b3.Split('-');
        if (parts.Length < 2 || parts.Length > 4
            || !TryParseTraceId(parts[0], out var high, out var low)
            || parts[1].Length != 16 || !TryParseHex(parts[1], out var span))
        {
            error = $"invalid b3 header '{b3}'";
            return false;
        }

        ulong parent = 0;
        if (parts.Length >= 3 && (parts[2].Length != 1 || SamplingState(parts[2][0]) is null))
        {
            error = $"invalid b3 sampling state in '{b3}'";
            return false;
        }

        if (parts.Length == 4 && (parts[3].Length != 16 || !TryParseHex(parts[3], out parent)))
        {
            error = $"invalid b3 parent span id in '{b3}'";
            return false;
        }

        context = new B3Context(high, low, span, parent, sampled);
        return true;
    }

    private static bool? SamplingState(char c) => c switch
    {
        '0' => false,
        '1' or 'd' => true,
        _ => null,
    };

    private static bool TryParseTraceId(string value, out ulong high, out ulong low)
    {
        high = 0;
        if (value.Length == 32)
        {
            return TryParseHex(value[..16], out high) & TryParseHex(value[16..], out low);
        }

        return TryParseHex(value, out low);
    }

    private static bool TryParseHex(string value, out ulong result) =>
        ulong.TryParse(value, System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out result) && value.Length is > 0 and <= 16;

    /// <summary>A 64-bit id as Zipkin writes it: 16 lowercase hex digits.</summary>
    public static string Hex(ulong value) => value.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The trace id as 16 or 32 hex digits.</summary>
    public static string TraceHex(ulong high, ulong low) => high != 0 ? Hex(high) + Hex(low) : Hex(low);
}
