using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Legate.Tls;

/// <summary>
/// The JA3 fingerprint of a ClientHello (as tls_inspector's <c>enable_ja3_fingerprinting</c>):
/// <c>version,ciphers,extensions,groups,point_formats</c> with each list's values in decimal joined
/// by '-', GREASE values (RFC 8701) left out, hashed with MD5 and written as 32 lowercase hex digits.
/// </summary>
internal static class Ja3Fingerprint
{
    /// <summary>The JA3 text of a ClientHello body (the handshake message without its 4-byte header), or null when it is malformed.</summary>
    public static string? Text(ReadOnlySpan<byte> body)
    {
        if (body.Length < 2 + 32 + 1)
        {
            return null;
        }

        var text = new StringBuilder(256);
        text.Append(CultureInfo.InvariantCulture, $"{(body[0] << 8) | body[1]}");
        var at = 34;
        at += 1 + body[at]; // session id
        if (at + 2 > body.Length)
        {
            return null;
        }

        var ciphersLength = (body[at] << 8) | body[at + 1];
        at += 2;
        if (at + ciphersLength > body.Length)
        {
            return null;
        }

        text.Append(',');
        AppendUInt16List(text, body.Slice(at, ciphersLength));
        at += ciphersLength;
        if (at >= body.Length)
        {
            return null;
        }

        at += 1 + body[at]; // compression methods
        text.Append(',');
        ReadOnlySpan<byte> groups = default;
        ReadOnlySpan<byte> pointFormats = default;
        if (at + 2 <= body.Length)
        {
            var extensionsLength = (body[at] << 8) | body[at + 1];
            at += 2;
            if (at + extensionsLength > body.Length)
            {
                return null;
            }

            var extensions = body.Slice(at, extensionsLength);
            var first = true;
            while (extensions.Length >= 4)
            {
                var type = (extensions[0] << 8) | extensions[1];
                var length = (extensions[2] << 8) | extensions[3];
                if (4 + length > extensions.Length)
                {
                    return null;
                }

                var value = extensions.Slice(4, length);
                if (!IsGrease(type))
                {
                    if (!first)
                    {
                        text.Append('-');
                    }

                    text.Append(type);
                    first = false;
                }

                if (type == 10 && value.Length >= 2)
                {
                    groups = value.Slice(2, Math.Min(value.Length - 2, (value[0] << 8) | value[1]));
                }
                else if (type == 11 && value.Length >= 1)
                {
                    pointFormats = value.Slice(1, Math.Min(value.Length - 1, value[0]));
                }

                extensions = extensions[(4 + length)..];
            }
        }

        text.Append(',');
        AppendUInt16List(text, groups);
        text.Append(',');
        for (var i = 0; i < pointFormats.Length; i++)
        {
            if (i > 0)
            {
                text.Append('-');
            }

            text.Append(pointFormats[i]);
        }

        return text.ToString();
    }

    /// <summary>MD5 of <paramref name="ja3Text"/>, lowercase hex: the value of <c>%TLS_JA3_FINGERPRINT%</c>.</summary>
    public static string Hash(string ja3Text) =>
        Convert.ToHexStringLower(MD5.HashData(Encoding.ASCII.GetBytes(ja3Text)));

    /// <summary>RFC 8701 GREASE values: 0x0A0A, 0x1A1A, … 0xFAFA.</summary>
    private static bool IsGrease(int value) => (value & 0x0F0F) == 0x0A0A && (value >> 8) == (value & 0xFF);

    private static void AppendUInt16List(StringBuilder text, ReadOnlySpan<byte> values)
    {
        var first = true;
        for (var i = 0; i + 1 < values.Length; i += 2)
        {
            var value = (values[i] << 8) | values[i + 1];
            if (IsGrease(value))
            {
                continue;
            }

            if (!first)
            {
                text.Append('-');
            }

            text.Append(value);
            first = false;
        }
    }
}
