using System.Globalization;
using System.Text;

namespace Legate.Http.Formatter;

/// <summary>
/// Envoy's <c>%START_TIME(format)%</c>: strftime specifiers, plus <c>%s</c> (seconds since the
/// epoch) and <c>%1f</c>…<c>%9f</c> / <c>%f</c> (fractional seconds with that many digits; 9 for
/// <c>%f</c>), always in UTC as Envoy prints it. The format is parsed once into pieces.
/// </summary>
internal sealed class StartTimeFormat
{
    private readonly (char Specifier, int Digits, string? Literal)[] _pieces;

    private StartTimeFormat((char, int, string?)[] pieces) => _pieces = pieces;

    /// <summary>Parses <paramref name="format"/>; null with <paramref name="problem"/> for a specifier Legate does not know.</summary>
    public static StartTimeFormat? Parse(string format, out string problem)
    {
        problem = string.Empty;
        var pieces = new List<(char, int, string?)>();
        var literal = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            var c = format[i];
            if (c != '%' || i + 1 == format.Length)
            {
                literal.Append(c);
                continue;
            }

            var next = format[++i];
            var digits = 0;
            if (next is >= '1' and <= '9' && i + 1 < format.Length && format[i + 1] == 'f')
            {
                digits = next - '0';
                next = 'f';
                i++;
            }
            else if (next == 'f')
            {
                digits = 9;
            }

            if (next == '%')
            {
                literal.Append('%');
                continue;
            }

            if ("YmdHMSsfzZjaAbBeyTFDpIun".IndexOf(next) < 0)
            {
                problem = $"START_TIME format specifier %{next} is not supported";
                return null;
            }

            if (literal.Length > 0)
            {
                pieces.Add(('\0', 0, literal.ToString()));
                literal.Clear();
            }

            pieces.Add((next, digits, null));
        }

        if (literal.Length > 0)
        {
            pieces.Add(('\0', 0, literal.ToString()));
        }

        return new StartTimeFormat(pieces.ToArray());
    }

    public string Format(DateTimeOffset time)
    {
        var t = time.UtcDateTime;
        var text = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        foreach (var (specifier, digits, literal) in _pieces)
        {
            switch (specifier)
            {
                case '\0': text.Append(literal); break;
                case 'Y': text.Append(t.Year.ToString("0000", inv)); break;
                case 'y': text.Append((t.Year % 100).ToString("00", inv)); break;
                case 'm': text.Append(t.Month.ToString("00", inv)); break;
                case 'd': text.Append(t.Day.ToString("00", inv)); break;
                case 'e': text.Append(t.Day.ToString(inv).PadLeft(2)); break;
                case 'j': text.Append(t.DayOfYear.ToString("000", inv)); break;
                case 'H': text.Append(t.Hour.ToString("00", inv)); break;
                case 'I': text.Append(((t.Hour + 11) % 12 + 1).ToString("00", inv)); break;
                case 'p': text.Append(t.Hour < 12 ? "AM" : "PM"); break;
                case 'M': text.Append(t.Minute.ToString("00", inv)); break;
                case 'S': text.Append(t.Second.ToString("00", inv)); break;
                case 's': text.Append(time.ToUnixTimeSeconds().ToString(inv)); break;
                case 'u': text.Append(t.DayOfWeek == DayOfWeek.Sunday ? '7' : (char)('0' + (int)t.DayOfWeek)); break;
                case 'a': text.Append(t.ToString("ddd", inv)); break;
                case 'A': text.Append(t.ToString("dddd", inv)); break;
                case 'b': text.Append(t.ToString("MMM", inv)); break;
                case 'B': text.Append(t.ToString("MMMM", inv)); break;
                case 'T': text.Append(t.ToString("HH:mm:ss", inv)); break;
                case 'F': text.Append(t.ToString("yyyy-MM-dd", inv)); break;
                case 'D': text.Append(t.ToString("MM/dd/yy", inv)); break;
                case 'z': text.Append("+0000"); break;
                case 'Z': text.Append("UTC"); break;
                case 'n': text.Append('\n'); break;
                case 'f':
                    var nanos = (t.Ticks % TimeSpan.TicksPerSecond) * 100;
                    text.Append(nanos.ToString("000000000", inv).AsSpan(0, digits));
                    break;
            }
        }

        return text.ToString();
    }
}
