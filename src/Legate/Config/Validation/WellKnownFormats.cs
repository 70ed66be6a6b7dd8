using System.Net;
using System.Net.Sockets;

namespace Legate.Config.Validation;

/// <summary>
/// The <c>well_known</c> string formats of PGV. The IP checks follow <c>inet_pton</c>, which is
/// what Envoy's C++ validators call: .NET's <see cref="IPAddress.TryParse(string, out IPAddress)"/>
/// alone is far more lenient (it takes <c>"1"</c> as <c>0.0.0.1</c> and accepts scope ids).
/// </summary>
internal static class WellKnownFormats
{
    public static bool IsIpv4(string s)
    {
        var parts = 0;
        var i = 0;
        while (true)
        {
            var start = i;
            var value = 0;
            while (i < s.Length && s[i] is >= '0' and <= '9' && i - start < 4)
            {
                value = (value * 10) + (s[i] - '0');
                i++;
            }

            var digits = i - start;
            if (digits == 0 || digits > 3 || value > 255 || (digits > 1 && s[start] == '0'))
            {
                return false;
            }

            parts++;
            if (i == s.Length)
            {
                return parts == 4;
            }

            if (s[i] != '.' || parts == 4)
            {
                return false;
            }

            i++;
        }
    }

    public static bool IsIpv6(string s)
    {
        // inet_pton takes neither brackets, zone ids nor prefix lengths.
        if (s.Length < 2 || !s.Contains(':', StringComparison.Ordinal) || s.AsSpan().IndexOfAny("[]%/ ") >= 0)
        {
            return false;
        }

        var lastColon = s.LastIndexOf(':');
        if (s.IndexOf('.', lastColon) >= 0 && !IsIpv4(s[(lastColon + 1)..]))
        {
            return false;
        }

        return IPAddress.TryParse(s, out var address) && address.AddressFamily == AddressFamily.InterNetworkV6;
    }

    public static bool IsIp(string s) => IsIpv4(s) || IsIpv6(s);

    /// <summary>Null when <paramref name="host"/> is a valid hostname, else the reason.</summary>
    public static string? HostnameProblem(string host)
    {
        if (host.Length > 253)
        {
            return "hostname cannot exceed 253 characters";
        }

        // One trailing dot (a fully qualified name) is allowed.
        var name = host.EndsWith('.') ? host[..^1] : host;
        foreach (var part in name.Split('.'))
        {
            if (part.Length is 0 or > 63)
            {
                return "hostname part must be non-empty and cannot exceed 63 characters";
            }

            if (part[0] == '-')
            {
                return "hostname parts cannot begin with hyphens";
            }

            if (part[^1] == '-')
            {
                return "hostname parts cannot end with hyphens";
            }

            foreach (var c in part)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c != '-')
                {
                    return $"hostname parts can only contain alphanumeric characters or hyphens, got {RuleText.Quote(c.ToString())}";
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Null when <paramref name="address"/> is a bare email address (<c>local@domain</c>, no display
    /// name or angle brackets), else the reason.
    /// </summary>
    public static string? EmailProblem(string address)
    {
        var at = address.LastIndexOf('@');
        if (at <= 0 || at == address.Length - 1)
        {
            return "missing '@' or empty local part or domain";
        }

        if (address.Length > 254)
        {
            return "email addresses cannot exceed 254 characters";
        }

        var local = address[..at];
        if (local.Length > 64)
        {
            return "email address local phrase cannot exceed 64 characters";
        }

        if (!IsDotAtom(local) && !IsQuotedLocal(local))
        {
            return "invalid local part " + RuleText.Quote(local);
        }

        return HostnameProblem(address[(at + 1)..]);
    }

    public static bool IsUuid(string s)
    {
        if (s.Length != 36)
        {
            return false;
        }

        for (var i = 0; i < s.Length; i++)
        {
            var ok = i is 8 or 13 or 18 or 23 ? s[i] == '-' : char.IsAsciiHexDigit(s[i]);
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>An absolute URI: a scheme, then anything <see cref="Uri"/> accepts.</summary>
    public static bool IsAbsoluteUri(string s) => HasScheme(s) && Uri.TryCreate(s, UriKind.Absolute, out _);

    /// <summary>An absolute URI or a relative reference.</summary>
    public static bool IsUriReference(string s)
    {
        if (HasScheme(s))
        {
            return Uri.TryCreate(s, UriKind.Absolute, out _);
        }

        // On Unix "/path" would parse as an absolute file URI; a reference is relative by construction.
        return s.AsSpan().IndexOfAny(" \"<>\\^`{|}") < 0 && !s.Any(char.IsControl) && Uri.TryCreate(s, UriKind.Relative, out _);
    }

    private static bool HasScheme(string s)
    {
        var colon = s.IndexOf(':');
        if (colon <= 0 || !char.IsAsciiLetter(s[0]))
        {
            return false;
        }

        for (var i = 1; i < colon; i++)
        {
            if (!char.IsAsciiLetterOrDigit(s[i]) && s[i] is not ('+' or '-' or '.'))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsDotAtom(string s)
    {
        if (s[0] == '.' || s[^1] == '.' || s.Contains("..", StringComparison.Ordinal))
        {
            return false;
        }

        foreach (var c in s)
        {
            if (!char.IsAsciiLetterOrDigit(c) && !"!#$%&'*+-/=?^_`{|}~.".Contains(c, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsQuotedLocal(string s)
    {
        if (s.Length < 2 || s[0] != '"' || s[^1] != '"')
        {
            return false;
        }

        for (var i = 1; i < s.Length - 1; i++)
        {
            var c = s[i];
            if (c == '\\')
            {
                i++;
                if (i >= s.Length - 1)
                {
                    return false;
                }
            }
            else if (c == '"' || c < 0x20 || c == 0x7f)
            {
                return false;
            }
        }

        return true;
    }
}
