using System.Globalization;
using System.Text;

namespace Legate.Server.Logging;

/// <summary>
/// Formats log lines from an spdlog-style pattern, the syntax of Envoy's <c>--log-format</c>.
/// The pattern is parsed once into a list of parts. Supported flags: %Y %m %d %H %M %S %T %e %f
/// %F %z %t %P %l %L %n %v %j %%; the source-location flags %s %g %# %! print nothing (as spdlog
/// does when a call site has no location); any other flag is printed as written.
/// </summary>
internal sealed class LogFormatter
{
    /// <summary>Envoy's default layout, without the source location Legate cannot know.</summary>
    public const string DefaultPattern = "[%Y-%m-%d %T.%e][%t][%l][%n] %v";

    private readonly Part[] _parts;

    public LogFormatter(string pattern)
    {
        Pattern = pattern;
        _parts = Parse(pattern);
    }

    public string Pattern { get; }

    public string Format(DateTimeOffset time, int threadId, LogLevel level, string component, string message)
    {
        var sb = new StringBuilder(64 + message.Length);
        foreach (var part in _parts)
        {
            switch (part.Kind)
            {
                case 'Y': Append4(sb, time.Year); break;
                case 'm': Append2(sb, time.Month); break;
                case 'd': Append2(sb, time.Day); break;
                case 'H': Append2(sb, time.Hour); break;
                case 'M': Append2(sb, time.Minute); break;
                case 'S': Append2(sb, time.Second); break;
                case 'T':
                    Append2(sb, time.Hour);
                    sb.Append(':');
                    Append2(sb, time.Minute);
                    sb.Append(':');
                    Append2(sb, time.Second);
                    break;
                case 'e': sb.Append(time.Millisecond.ToString("D3", CultureInfo.InvariantCulture)); break;
                case 'f': sb.Append((time.Ticks % TimeSpan.TicksPerSecond / 10).ToString("D6", CultureInfo.InvariantCulture)); break;
                case 'F': sb.Append((time.Ticks % TimeSpan.TicksPerSecond * 100).ToString("D9", CultureInfo.InvariantCulture)); break;
                case 'z': AppendOffset(sb, time.Offset); break;
                case 't': sb.Append(threadId.ToString(CultureInfo.InvariantCulture)); break;
                case 'P': sb.Append(Environment.ProcessId.ToString(CultureInfo.InvariantCulture)); break;
                case 'l': sb.Append(LogLevels.Name(level)); break;
                case 'L': sb.Append(LogLevels.ShortName(level)); break;
                case 'n': sb.Append(component); break;
                case 'v': sb.Append(message); break;
                case 'j': AppendJsonEscaped(sb, message); break;
                default: sb.Append(part.Literal); break;
            }
        }

        return sb.ToString();
    }

    private static Part[] Parse(string pattern)
    {
        var parts = new List<Part>();
        var literal = new StringBuilder();
        void FlushLiteral()
        {
            if (literal.Length > 0)
            {
                parts.Add(new Part('\0', literal.ToString()));
                literal.Clear();
            }
        }

        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c != '%' || i == pattern.Length - 1)
            {
                literal.Append(c);
                continue;
            }

            var flag = pattern[++i];
            switch (flag)
            {
                case '%':
                    literal.Append('%');
                    break;
                case 's' or 'g' or '#' or '!':
                    // Source location: unknown in Legate, printed empty like spdlog without a location.
                    break;
                case 'Y' or 'm' or 'd' or 'H' or 'M' or 'S' or 'T' or 'e' or 'f' or 'F' or 'z'
                    or 't' or 'P' or 'l' or 'L' or 'n' or 'v' or 'j':
                    FlushLiteral();
                    parts.Add(new Part(flag, string.Empty));
                    break;
                default:
                    literal.Append('%').Append(flag);
                    break;
            }
        }

        FlushLiteral();
        return parts.ToArray();
    }

    private static void Append2(StringBuilder sb, int value)
    {
        sb.Append((char)('0' + (value / 10)));
        sb.Append((char)('0' + (value % 10)));
    }

    private static void Append4(StringBuilder sb, int value) => sb.Append(value.ToString("D4", CultureInfo.InvariantCulture));

    private static void AppendOffset(StringBuilder sb, TimeSpan offset)
    {
        sb.Append(offset < TimeSpan.Zero ? '-' : '+');
        var abs = offset.Duration();
        Append2(sb, abs.Hours);
        sb.Append(':');
        Append2(sb, abs.Minutes);
    }

    // Envoy's %j: the message escaped to sit inside a JSON string.
    private static void AppendJsonEscaped(StringBuilder sb, string message)
    {
        foreach (var c in message)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }
    }

    /// <summary>One piece of the pattern: a flag letter, or <c>'\0'</c> for literal text.</summary>
    private readonly record struct Part(char Kind, string Literal);
}
