using System.Buffers;

namespace Legate.Http.Http1;

/// <summary>
/// Reads the comma-separated token list of Connection (RFC 9110 §7.6.1): elements are
/// case-insensitive, surrounded by optional whitespace, and empty elements are ignored.
/// </summary>
internal static class ConnectionTokens
{
    /// <summary>The options named by every Connection field of the map.</summary>
    public static ConnectionOptions Read(HttpHeaderMap headers)
    {
        ConnectionOptions options = ConnectionOptions.None;
        int i = -1;
        while ((i = headers.IndexOf(KnownHeader.Connection, i + 1)) >= 0)
        {
            options |= Parse(headers.GetValueBytes(i));
        }

        return options;
    }

    public static ConnectionOptions Parse(ReadOnlySpan<byte> value)
    {
        ConnectionOptions options = ConnectionOptions.None;
        while (!value.IsEmpty)
        {
            int comma = value.IndexOf((byte)',');
            ReadOnlySpan<byte> element = HttpChars.TrimOws(comma < 0 ? value : value[..comma]);
            value = comma < 0 ? default : value[(comma + 1)..];
            if (System.Text.Ascii.EqualsIgnoreCase(element, "close"u8))
            {
                options |= ConnectionOptions.Close;
            }
            else if (System.Text.Ascii.EqualsIgnoreCase(element, "keep-alive"u8))
            {
                options |= ConnectionOptions.KeepAlive;
            }
            else if (System.Text.Ascii.EqualsIgnoreCase(element, "upgrade"u8))
            {
                options |= ConnectionOptions.Upgrade;
            }
        }

        return options;
    }

    /// <summary>
    /// Removes the <c>upgrade</c> and <c>http2-settings</c> tokens from every Connection field,
    /// dropping fields left empty: what Envoy does to an h2c upgrade request, which it does not
    /// support, so the request is served as plain HTTP/1.1.
    /// </summary>
    public static void RemoveH2cTokens(HttpHeaderMap headers)
    {
        Span<byte> small = stackalloc byte[256];
        for (int i = headers.Count - 1; i >= 0; i--)
        {
            if (headers.GetKnown(i) != KnownHeader.Connection)
            {
                continue;
            }

            ReadOnlySpan<byte> value = headers.GetValueBytes(i);
            byte[]? rented = null;
            Span<byte> kept = value.Length <= small.Length ? small : (rented = ArrayPool<byte>.Shared.Rent(value.Length));
            int length = 0;
            while (!value.IsEmpty)
            {
                int comma = value.IndexOf((byte)',');
                ReadOnlySpan<byte> element = HttpChars.TrimOws(comma < 0 ? value : value[..comma]);
                value = comma < 0 ? default : value[(comma + 1)..];
                if (element.IsEmpty ||
                    System.Text.Ascii.EqualsIgnoreCase(element, "upgrade"u8) ||
                    System.Text.Ascii.EqualsIgnoreCase(element, "http2-settings"u8))
                {
                    continue;
                }

                if (length > 0)
                {
                    kept[length++] = (byte)',';
                }

                element.CopyTo(kept[length..]);
                length += element.Length;
            }

            if (length == 0)
            {
                headers.RemoveAt(i);
            }
            else
            {
                headers.SetValueAt(i, kept[..length]);
            }

            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }
}
