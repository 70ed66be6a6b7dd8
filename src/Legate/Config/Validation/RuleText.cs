using System.Globalization;
using System.Text;
using Google.Protobuf;

namespace Legate.Config.Validation;

/// <summary>
/// Formats the values that appear in validation messages. Strings and bytes are quoted the way
/// PGV (Go's <c>%q</c>) quotes them, so a pattern reads exactly as it is written in the .proto
/// file; durations use Envoy's <c>1.5s</c> style.
/// </summary>
internal static class RuleText
{
    public static string Number<T>(T value)
        where T : IFormattable => value.ToString(null, CultureInfo.InvariantCulture);

    /// <summary>A double-quoted string with backslash, quote and control characters escaped.</summary>
    public static string Quote(string value)
    {
        var sb = new StringBuilder(value.Length + 2);
        sb.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"':
                    sb.Append("\\\"");
                    break;
                case '\\':
                    sb.Append("\\\\");
                    break;
                case '\n':
                    sb.Append("\\n");
                    break;
                case '\r':
                    sb.Append("\\r");
                    break;
                case '\t':
                    sb.Append("\\t");
                    break;
                default:
                    if (c < 0x20 || c == 0x7f)
                    {
                        sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        return sb.Append('"').ToString();
    }

    /// <summary>Bytes as a quoted string: printable ASCII as is, everything else as <c>\xNN</c>.</summary>
    public static string Quote(ByteString value)
    {
        var sb = new StringBuilder(value.Length + 2);
        sb.Append('"');
        foreach (var b in value.Span)
        {
            if (b == '"' || b == '\\')
            {
                sb.Append('\\').Append((char)b);
            }
            else if (b is >= 0x20 and < 0x7f)
            {
                sb.Append((char)b);
            }
            else
            {
                sb.Append("\\x").Append(b.ToString("x2", CultureInfo.InvariantCulture));
            }
        }

        return sb.Append('"').ToString();
    }

    public static string List<T>(IEnumerable<T> items, Func<T, string> format) => "[" + string.Join(", ", items.Select(format)) + "]";

    /// <summary>A duration given in nanoseconds, as Envoy prints it: <c>0s</c>, <c>1.5s</c>, <c>-0.001s</c>.</summary>
    public static string Duration(Int128 nanos)
    {
        var sign = nanos < 0 ? "-" : string.Empty;
        var abs = Int128.Abs(nanos);
        var seconds = abs / Durations.NanosPerSecond;
        var fraction = (long)(abs % Durations.NanosPerSecond);
        var text = sign + seconds.ToString(CultureInfo.InvariantCulture);
        if (fraction != 0)
        {
            text += "." + fraction.ToString("D9", CultureInfo.InvariantCulture).TrimEnd('0');
        }

        return text + "s";
    }

    /// <summary>A timestamp given in nanoseconds since the Unix epoch, in RFC 3339 (UTC).</summary>
    public static string Timestamp(Int128 nanos)
    {
        var seconds = (long)(nanos >= 0 ? nanos / Durations.NanosPerSecond : ((nanos + 1) / Durations.NanosPerSecond) - 1);
        var fraction = (long)(nanos - ((Int128)seconds * Durations.NanosPerSecond));
        if (seconds < Durations.MinTimestampSeconds || seconds > Durations.MaxTimestampSeconds)
        {
            return seconds.ToString(CultureInfo.InvariantCulture) + "s since epoch";
        }

        var text = DateTimeOffset.FromUnixTimeSeconds(seconds).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);
        if (fraction != 0)
        {
            text += "." + fraction.ToString("D9", CultureInfo.InvariantCulture).TrimEnd('0');
        }

        return text + "Z";
    }
}
