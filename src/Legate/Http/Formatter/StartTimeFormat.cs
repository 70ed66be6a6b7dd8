using System.Globalization;
using System.Text;

namespace Legate.Http.Formatter;

/// <summary>
/// The time format of <c>%START_TIME(...)%</c>: strftime specifiers as Envoy takes them (absl's
/// FormatTime plus Envoy's own <c>%s</c> and <c>%[1-9]f</c>), compiled once into pieces. Times
/// are printed in UTC, as Envoy does. Without a format Envoy prints
/// <c>2024-01-02T03:04:05.678Z</c>.
/// </summary>
internal sealed class StartTimeFormat
{
    private readonly Piece[] _pieces;

    private StartTimeFormat(Piece[] pieces) => _pieces = pieces;

    /// <summary>Envoy's default: <c>%Y-%m-%dT%H:%M:%E3SZ</c>.</summary>
    public static StartTimeFormat Default { get; } = Parse("%Y-%m-%dT%H:%M:%E3SZ");

    public static StartTimeFormat Parse(string format)
    {
        var pieces = new List<Piece>();
        var literal = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            var c = format[i];
            if (c != '%' || i + 1 >= format.Length)
            {
                literal.Append(c);
                continue;
            }

            var next = format[i + 1];
            Piece? piece = null;
            var consumed = 1;
            if (next is >= '1' and <= '9' && i + 2 < format.Length && format[i + 2] == 'f')
            {
                piece = new Piece(Kind.Fraction, next - '0');
                consumed = 2;
            }
            else if (next == 'E' && i + 3 < format.Length && (char.IsAsciiDigit(format[i + 2]) || format[i + 2] == '*') && format[i + 3] is 'S' or 'f')
            {
                // absl: %E#S seconds with # fractional digits, %E*S all significant digits, %E#f/%E*f the fraction alone.
                var digits = format[i + 2] == '*' ? -1 : format[i + 2] - '0';
                piece = new Piece(format[i + 3] == 'S' ? Kind.SecondsWithFraction : Kind.Fraction, digits);
                consumed = 3;
            }
            else if (next == 'E' && i + 3 < format.Length && format[i + 2] == '4' && format[i + 3] == 'Y')
            {
                piece = new Piece(Kind.Specifier, 'Y');
                consumed = 3;
            }
            else if (next == 'E' && i + 2 < format.Length && format[i + 2] == 'z')
            {
                piece = new Piece(Kind.Specifier, ':');
                consumed = 2;
            }
            else if (next == 'f')
            {
                // Envoy: %f is nine fractional digits (nanoseconds).
                piece = new Piece(Kind.Fraction, 9);
            }
            else if (next == '%')
            {
                literal.Append('%');
                i++;
                continue;
            }
            else if ("YmdHMSyjaAbBheIpTFDRzZsnt".Contains(next, StringComparison.Ordinal))
            {
                piece = new Piece(Kind.Specifier, next);
            }

            if (piece is null)
            {
                // Not a specifier strftime knows: printed as written.
                literal.Append(c);
                continue;
            }

            if (literal.Length > 0)
            {
                pieces.Add(new Piece(literal.ToString()));
                literal.Clear();
            }

            pieces.Add(piece);
            i += consumed;
        }

        if (literal.Length > 0)
        {
            pieces.Add(new Piece(literal.ToString()));
        }

        return new StartTimeFormat(pieces.ToArray());
    }

    public void Append(StringBuilder sb, DateTimeOffset time)
    {
        var t = time.UtcDateTime;
        foreach (var piece in _pieces)
        {
            switch (piece.Kind)
            {
                case Kind.Literal:
                    sb.Append(piece.Literal);
                    break;
                case Kind.Fraction:
                    AppendFraction(sb, t, piece.Argument);
                    break;
                case Kind.SecondsWithFraction:
                    Two(sb, t.Second);
                    if (piece.Argument != 0)
                    {
                        var start = sb.Length;
                        sb.Append('.');
                        AppendFraction(sb, t, piece.Argument);
                        if (sb.Length == start + 1)
                        {
                            sb.Length = start;
                        }
                    }

                    break;
                default:
                    AppendSpecifier(sb, t, (char)piece.Argument);
                    break;
            }
        }
    }

    private static void AppendFraction(StringBuilder sb, DateTime t, int digits)
    {
        // Ticks are 100 ns: the ninth digit is always 0.
        var nanos = (t.Ticks % TimeSpan.TicksPerSecond) * 100;
        Span<char> all = stackalloc char[9];
        nanos.TryFormat(all, out _, "D9", CultureInfo.InvariantCulture);
        if (digits < 0)
        {
            // %E*: only the significant digits.
            var length = 9;
            while (length > 0 && all[length - 1] == '0')
            {
                length--;
            }

            sb.Append(all[..length]);
            return;
        }

        sb.Append(all[..digits]);
    }

    private static void AppendSpecifier(StringBuilder sb, DateTime t, char specifier)
    {
        var inv = CultureInfo.InvariantCulture;
        switch (specifier)
        {
            case 'Y': sb.Append(t.Year.ToString("D4", inv)); break;
            case 'm': Two(sb, t.Month); break;
            case 'd': Two(sb, t.Day); break;
            case 'e': sb.Append(t.Day < 10 ? " " : string.Empty).Append(t.Day); break;
            case 'H': Two(sb, t.Hour); break;
            case 'I': Two(sb, t.Hour % 12 == 0 ? 12 : t.Hour % 12); break;
            case 'p': sb.Append(t.Hour < 12 ? "AM" : "PM"); break;
            case 'M': Two(sb, t.Minute); break;
            case 'S': Two(sb, t.Second); break;
            case 'y': Two(sb, t.Year % 100); break;
            case 'j': sb.Append(t.DayOfYear.ToString("D3", inv)); break;
            case 'a': sb.Append(inv.DateTimeFormat.GetAbbreviatedDayName(t.DayOfWeek)); break;
            case 'A': sb.Append(inv.DateTimeFormat.GetDayName(t.DayOfWeek)); break;
            case 'b' or 'h': sb.Append(inv.DateTimeFormat.GetAbbreviatedMonthName(t.Month)); break;
            case 'B': sb.Append(inv.DateTimeFormat.GetMonthName(t.Month)); break;
            case 'T': Two(sb, t.Hour); sb.Append(':'); Two(sb, t.Minute); sb.Append(':'); Two(sb, t.Second); break;
            case 'R': Two(sb, t.Hour); sb.Append(':'); Two(sb, t.Minute); break;
            case 'F': sb.Append(t.Year.ToString("D4", inv)).Append('-'); Two(sb, t.Month); sb.Append('-'); Two(sb, t.Day); break;
            case 'D': Two(sb, t.Month); sb.Append('/'); Two(sb, t.Day); sb.Append('/'); Two(sb, t.Year % 100); break;
            case 'z': sb.Append("+0000"); break;
            case ':': sb.Append("+00:00"); break;
            case 'Z': sb.Append("UTC"); break;
            case 's': sb.Append((t.Ticks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerSecond); break;
            case 'n': sb.Append('\n'); break;
            case 't': sb.Append('\t'); break;
        }
    }

    private static void Two(StringBuilder sb, int value)
    {
        sb.Append((char)('0' + (value / 10)));
        sb.Append((char)('0' + (value % 10)));
    }

    private enum Kind
    {
        Literal,
        Specifier,
        Fraction,
        SecondsWithFraction,
    }

    private sealed class Piece
    {
        public Piece(string literal)
        {
            Kind = Kind.Literal;
            Literal = literal;
        }

        public Piece(Kind kind, int argument)
        {
            Kind = kind;
            Argument = argument;
        }

        public Kind Kind { get; }

        public string? Literal { get; }

        /// <summary>The specifier character, or the number of fractional digits (-1: all significant).</summary>
        public int Argument { get; }
    }
}
