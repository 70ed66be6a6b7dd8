using System.Globalization;
using Legate.Http.Http1;

namespace Legate.Tracing.OpenTelemetry;

/// <summary>
/// A W3C trace context (<c>traceparent</c>: <c>00-{32 hex trace id}-{16 hex parent id}-{2 hex flags}</c>,
/// and <c>tracestate</c>, its values joined by commas), as Envoy's OpenTelemetry extractor reads it:
/// exactly 55 characters, lowercase hex, ids not all zero, version not <c>ff</c>.
/// </summary>
internal readonly record struct TraceParent(ulong TraceIdHigh, ulong TraceIdLow, ulong SpanId, bool Sampled, string TraceState)
{
    public const string TraceParentHeader = "traceparent";
    public const string TraceStateHeader = "tracestate";
    private const int Length = 55;

    /// <summary>True when the request carries a traceparent (valid or not).</summary>
    public static bool IsPresent(HttpHeaderMap headers) => headers.Contains(TraceParentHeader);

    public static bool TryExtract(HttpHeaderMap headers, out TraceParent context, out string? error)
    {
        context = default;
        error = null;
        var value = headers.GetValue(TraceParentHeader);
        if (value is null)
        {
            return false;
        }

        if (value.Length != Length || value[2] != '-' || value[35] != '-' || value[52] != '-')
        {
            error = $"invalid traceparent '{value}'";
            return false;
        }

        if (!TryHex(value.AsSpan(0, 2), out var version) || version == 0xff
            || !TryHex(value.AsSpan(3, 16), out var high) || !TryHex(value.AsSpan(19, 16), out var low)
            || !TryHex(value.AsSpan(36, 16), out var span) || !TryHex(value.AsSpan(53, 2), out var flags)
            || (high == 0 && low == 0) || span == 0)
        {
            error = $"invalid traceparent '{value}'";
            return false;
        }

        context = new TraceParent(high, low, span, (flags & 1) != 0, JoinedTraceState(headers));
        return true;
    }

    /// <summary>Writes <c>traceparent</c> (and <c>tracestate</c> when there is one) for a span.</summary>
    public static void Inject(HttpHeaderMap headers, ulong traceIdHigh, ulong traceIdLow, ulong spanId, bool sampled, string traceState)
    {
        headers.Set(TraceParentHeader, "00-" + Hex(traceIdHigh) + Hex(traceIdLow) + "-" + Hex(spanId) + (sampled ? "-01" : "-00"));
        if (traceState.Length > 0)
        {
            headers.Set(TraceStateHeader, traceState);
        }
    }

    public static string Hex(ulong value) => value.ToString("x16", CultureInfo.InvariantCulture);

    private static string JoinedTraceState(HttpHeaderMap headers)
    {
        var index = headers.IndexOf(TraceStateHeader.AsSpan());
        if (index < 0)
        {
            return string.Empty;
        }

        var state = headers.GetValue(index);
        for (var next = headers.IndexOf(TraceStateHeader.AsSpan(), index + 1); next >= 0; next = headers.IndexOf(TraceStateHeader.AsSpan(), next + 1))
        {
            state += "," + headers.GetValue(next);
        }

        return state;
    }

    private static bool TryHex(ReadOnlySpan<char> text, out ulong value)
    {
        value = 0;
        foreach (var c in text)
        {
            // Lowercase only, as the W3C recommendation requires.
            var digit = c is >= '0' and <= '9' ? c - '0' : c is >= 'a' and <= 'f' ? c - 'a' + 10 : -1;
            if (digit < 0)
            {
                return false;
            }

            value = (value << 4) | (uint)digit;
        }

        return true;
    }
}
