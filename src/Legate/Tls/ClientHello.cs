using System.Buffers.Binary;
using System.Text;

namespace Legate.Tls;

/// <summary>
/// What a TLS ClientHello tells before any handshake: the server name (SNI), the offered ALPN
/// protocols and whether the client accepts ECDSA signatures. Parsed from peeked bytes (nothing
/// consumed), across several TLS records when the hello is fragmented.
/// </summary>
internal sealed class ClientHello
{
    /// <summary>The largest ClientHello Legate waits for (Envoy's tls_inspector limit is 64 KiB).</summary>
    public const int MaxSize = 64 * 1024;

    private ClientHello(string serverName, string[] alpn, bool supportsEcdsa, byte[] body)
    {
        ServerName = serverName;
        ApplicationProtocols = alpn;
        SupportsEcdsa = supportsEcdsa;
        Body = body;
    }

    public enum ParseStatus
    {
        /// <summary>A complete ClientHello was parsed.</summary>
        Done,

        /// <summary>The bytes so far are a valid prefix; more are needed.</summary>
        NeedMoreData,

        /// <summary>Not a TLS handshake at all (e.g. plaintext HTTP).</summary>
        NotTls,

        /// <summary>TLS, but malformed or larger than <see cref="MaxSize"/>.</summary>
        Invalid,
    }

    /// <summary>The SNI host name, lower-cased; "" when the client sent none.</summary>
    public string ServerName { get; }

    public string[] ApplicationProtocols { get; }

    /// <summary>True when the client offered an ECDSA signature algorithm (or sent no list: TLS 1.2 defaults include ECDSA).</summary>
    public bool SupportsEcdsa { get; }

    /// <summary>The handshake message's body (after its 4-byte header), for fingerprints (JA3).</summary>
    public byte[] Body { get; }

    public static ParseStatus TryParse(ReadOnlySpan<byte> data, out ClientHello? hello)
    {
        hello = null;
        if (data.Length == 0)
        {
            return ParseStatus.NeedMoreData;
        }

        // Record header: handshake (22), major version 3.
        if (data[0] != 0x16 || (data.Length > 1 && data[1] != 0x03))
        {
            return ParseStatus.NotTls;
        }

        // Reassemble the handshake message from as many records as it spans.
        byte[]? assembled = null;
        var assembledLength = 0;
        var offset = 0;
        var needed = -1;
        while (true)
        {
            if (data.Length - offset < 5)
            {
                return ParseStatus.NeedMoreData;
            }

            if (data[offset] != 0x16 || data[offset + 1] != 0x03)
            {
                return offset == 0 ? ParseStatus.NotTls : ParseStatus.Invalid;
            }

            var recordLength = BinaryPrimitives.ReadUInt16BigEndian(data[(offset + 3)..]);
            if (recordLength == 0 || recordLength > 16384 + 2048)
            {
                return ParseStatus.Invalid;
            }

            if (data.Length - offset - 5 < recordLength)
            {
                return offset + 5 + recordLength > MaxSize + 5 * 8 ? ParseStatus.Invalid : ParseStatus.NeedMoreData;
            }

            var fragment = data.Slice(offset + 5, recordLength);
            assembled ??= new byte[Math.Min(MaxSize, 16384 + 4)];
            if (assembledLength + fragment.Length > assembled.Length)
            {
                if (assembledLength + fragment.Length > MaxSize)
                {
                    return ParseStatus.Invalid;
                }

                Array.Resize(ref assembled, Math.Min(MaxSize, Math.Max(assembled.Length * 2, assembledLength + fragment.Length)));
            }

            fragment.CopyTo(assembled.AsSpan(assembledLength));
            assembledLength += fragment.Length;
            offset += 5 + recordLength;
            if (needed < 0 && assembledLength >= 4)
            {
                if (assembled[0] != 0x01)
                {
                    return ParseStatus.Invalid;
                }

                needed = 4 + ((assembled[1] << 16) | (assembled[2] << 8) | assembled[3]);
                if (needed > MaxSize)
                {
                    return ParseStatus.Invalid;
                }
            }

            if (needed >= 0 && assembledLength >= needed)
            {
                break;
            }
        }

        return ParseBody(assembled.AsSpan(4, needed - 4), out hello) ? ParseStatus.Done : ParseStatus.Invalid;
    }

    private static bool ParseBody(ReadOnlySpan<byte> body, out ClientHello? hello)
    {
        hello = null;
        var reader = new Reader(body);
        if (!reader.Skip(2 + 32) || !reader.SkipVector(1) || !reader.SkipVector(2) || !reader.SkipVector(1))
        {
            return false;
        }

        var serverName = string.Empty;
        string[] alpn = [];
        var supportsEcdsa = true;
        if (reader.Remaining == 0)
        {
            hello = new ClientHello(serverName, alpn, supportsEcdsa, body.ToArray());
            return true;
        }

        if (!reader.ReadVector(2, out var extensions))
        {
            return false;
        }

        var ext = new Reader(extensions);
        while (ext.Remaining > 0)
        {
            if (!ext.ReadUInt16(out var type) || !ext.ReadVector(2, out var value))
            {
                return false;
            }

            var v = new Reader(value);
            switch (type)
            {
                case 0: // server_name
                    if (v.ReadVector(2, out var list))
                    {
                        var names = new Reader(list);
                        while (names.Remaining > 0 && names.ReadByte(out var nameType) && names.ReadVector(2, out var name))
                        {
                            if (nameType == 0)
                            {
                                serverName = Encoding.ASCII.GetString(name).ToLowerInvariant();
                                break;
                            }
                        }
                    }

                    break;
                case 16: // application_layer_protocol_negotiation
                    if (v.ReadVector(2, out var protocols))
                    {
                        var p = new Reader(protocols);
                        var found = new List<string>();
                        while (p.Remaining > 0 && p.ReadVector(1, out var protocol))
                        {
                            found.Add(Encoding.ASCII.GetString(protocol));
                        }

                        alpn = [.. found];
                    }

                    break;
                case 13: // signature_algorithms
                    if (v.ReadVector(2, out var algorithms))
                    {
                        supportsEcdsa = false;
                        for (var i = 0; i + 1 < algorithms.Length; i += 2)
                        {
                            // ecdsa_secp256r1_sha256 (0x0403), _secp384r1_sha384 (0x0503), _secp521r1_sha512 (0x0603), ecdsa_sha1 (0x0203)
                            if (algorithms[i + 1] == 0x03 && algorithms[i] is 0x04 or 0x05 or 0x06 or 0x02)
                            {
                                supportsEcdsa = true;
                                break;
                            }
                        }
                    }

                    break;
            }
        }

        hello = new ClientHello(serverName, alpn, supportsEcdsa, body.ToArray());
        return true;
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _data = data;

        public readonly int Remaining => _data.Length;

        public bool Skip(int n)
        {
            if (_data.Length < n)
            {
                return false;
            }

            _data = _data[n..];
            return true;
        }

        public bool ReadByte(out byte value)
        {
            value = 0;
            if (_data.Length < 1)
            {
                return false;
            }

            value = _data[0];
            _data = _data[1..];
            return true;
        }

        public bool ReadUInt16(out int value)
        {
            value = 0;
            if (_data.Length < 2)
            {
                return false;
            }

            value = BinaryPrimitives.ReadUInt16BigEndian(_data);
            _data = _data[2..];
            return true;
        }

        public bool ReadVector(int lengthBytes, out ReadOnlySpan<byte> value)
        {
            value = default;
            int length;
            if (lengthBytes == 1)
            {
                if (!ReadByte(out var b))
                {
                    return false;
                }

                length = b;
            }
            else if (!ReadUInt16(out length))
            {
                return false;
            }

            if (_data.Length < length)
            {
                return false;
            }

            value = _data[..length];
            _data = _data[length..];
            return true;
        }

        public bool SkipVector(int lengthBytes) => ReadVector(lengthBytes, out _);
    }
}
