using System.Text;
using Legate.Http.Http1;

namespace Legate.Http.Http2;

/// <summary>
/// Kestrel's response headers take strings, but a connection's responses mostly repeat the ones
/// before (the same upstream sends the same content-type, server, cache headers…). A pooled
/// stream remembers the strings of its last response by position and hands them out again while
/// the bytes are the same, so a steady stream of responses converts no header to a new string.
/// </summary>
internal sealed class Http2HeaderStrings
{
    /// <summary>Headers beyond this position are always converted.</summary>
    private const int MaxRemembered = 32;

    /// <summary>The strings of the numbers 0–999, made on first use.</summary>
    private static readonly string?[] s_numbers = new string?[1000];

    private string?[] _names = [];
    private string?[] _values = [];

    /// <summary>The name of field <paramref name="index"/>: interned for known headers, else the remembered or a new string.</summary>
    public string Name(HttpHeaderMap headers, int index)
    {
        var known = headers.GetKnown(index);
        if (known != KnownHeader.None)
        {
            return KnownHeaders.GetName(known);
        }

        if (index >= MaxRemembered)
        {
            return headers.GetName(index);
        }

        EnsureCapacity(index);
        var remembered = _names[index];

        // Unknown names are kept lowercase; compare case-insensitively with the bytes as received.
        if (remembered is not null && Ascii.EqualsIgnoreCase(headers.GetNameBytes(index), remembered))
        {
            return remembered;
        }

        return _names[index] = headers.GetName(index);
    }

    /// <summary>The value of field <paramref name="index"/>: the remembered string while the bytes match, else a new one.</summary>
    public string Value(HttpHeaderMap headers, int index)
    {
        if (index >= MaxRemembered)
        {
            return ConvertValue(headers, index);
        }

        EnsureCapacity(index);
        var remembered = _values[index];
        if (remembered is not null && Ascii.Equals(headers.GetValueBytes(index), remembered))
        {
            return remembered;
        }

        return _values[index] = ConvertValue(headers, index);
    }

    /// <summary>
    /// A new string for the value, except small numbers (x-envoy-upstream-service-time, which
    /// changes with almost every response), which come from a table.
    /// </summary>
    private static string ConvertValue(HttpHeaderMap headers, int index)
    {
        var bytes = headers.GetValueBytes(index);
        if (bytes.Length is > 0 and <= 3)
        {
            var number = 0;
            foreach (var b in bytes)
            {
                var digit = b - (byte)'0';
                if ((uint)digit > 9)
                {
                    return headers.GetValue(index);
                }

                number = (number * 10) + digit;
            }

            // "007" is not "7": only canonical numbers come from the table.
            if (bytes[0] != (byte)'0' || bytes.Length == 1)
            {
                return s_numbers[number] ??= number.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return headers.GetValue(index);
    }

    private void EnsureCapacity(int index)
    {
        if (index >= _names.Length)
        {
            var size = Math.Min(MaxRemembered, Math.Max(8, (index + 1) * 2));
            Array.Resize(ref _names, size);
            Array.Resize(ref _values, size);
        }
    }
}
