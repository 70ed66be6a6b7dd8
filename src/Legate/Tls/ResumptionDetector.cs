using System.Buffers.Binary;

namespace Legate.Tls;

/// <summary>
/// Tells from the bytes a TLS server sends whether a handshake resumed a session, for Envoy's
/// <c>ssl.session_reused</c>: .NET's <see cref="System.Net.Security.SslStream"/> resumes sessions
/// (OpenSSL's session cache and tickets) but has no public property saying so, and reaching
/// OpenSSL's <c>SSL_session_reused</c> would need the stream's private handle. The server's first
/// flight is plaintext up to the ServerHello in TLS 1.3 and up to the ChangeCipherSpec in TLS 1.2,
/// and the protocol itself says what happened there:
/// <list type="bullet">
/// <item>TLS 1.3: the ServerHello carries a <c>pre_shared_key</c> extension exactly when the server
/// accepted a PSK, i.e. resumed (RFC 8446 4.2.11; a HelloRetryRequest is skipped).</item>
/// <item>TLS 1.2: a full handshake follows the ServerHello with Certificate, ServerKeyExchange,
/// CertificateRequest or ServerHelloDone; an abbreviated one with NewSessionTicket or at once with
/// ChangeCipherSpec (RFC 5246 7.3, RFC 5077 3.1).</item>
/// </list>
/// Anything it cannot read (not TLS, SSL 3, a flight larger than <see cref="MaxObserved"/>) is
/// "not resumed": the counter can miss a resumption but never invents one.
/// </summary>
internal sealed class ResumptionDetector
{
    /// <summary>Bytes looked at before giving up (a ServerHello comes first and is small).</summary>
    public const int MaxObserved = 32 * 1024;

    private const byte ContentChangeCipherSpec = 20;
    private const byte ContentHandshake = 22;
    private const byte HandshakeServerHello = 2;
    private const byte HandshakeNewSessionTicket = 4;
    private const ushort ExtensionPreSharedKey = 41;
    private const ushort ExtensionSupportedVersions = 43;

    // RFC 8446 4.1.3: a HelloRetryRequest is a ServerHello with this random.
    private static ReadOnlySpan<byte> HelloRetryRandom =>
    [
        0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
        0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
    ];

    private byte[] _seen = [];
    private int _length;

    /// <summary>True once the answer is known (<see cref="Resumed"/> is final); no more bytes are needed.</summary>
    public bool Decided { get; private set; }

    /// <summary>Whether the handshake resumed a session (false until <see cref="Decided"/>, and when undecidable).</summary>
    public bool Resumed { get; private set; }

    /// <summary>Adds the next bytes the server sent.</summary>
    public void Feed(ReadOnlySpan<byte> data)
    {
        if (Decided || data.IsEmpty)
        {
            return;
        }

        var take = Math.Min(data.Length, MaxObserved - _length);
        if (_length + take > _seen.Length)
        {
            Array.Resize(ref _seen, Math.Min(MaxObserved, Math.Max(_length + take, Math.Max(512, _seen.Length * 2))));
        }

        data[..take].CopyTo(_seen.AsSpan(_length));
        _length += take;
        Evaluate();
        if (!Decided && _length >= MaxObserved)
        {
            Decide(false);
        }
    }

    private void Decide(bool resumed)
    {
        Decided = true;
        Resumed = resumed;
        _seen = [];
        _length = 0;
    }

    /// <summary>Reads the records seen so far from the start (a few hundred bytes in practice).</summary>
    private void Evaluate()
    {
        // The handshake messages, joined across records (a message may span records), up to the
        // first record of another type.
        Span<byte> handshake = _length <= 4096 ? stackalloc byte[_length] : new byte[_length];
        var handshakeLength = 0;
        var position = 0;
        byte? following = null;
        while (_length - position >= 5)
        {
            var record = _seen.AsSpan(position, _length - position);
            if (record[1] != 3)
            {
                // Not TLS (or SSL 2): nothing to learn.
                Decide(false);
                return;
            }

            var available = Math.Min(BinaryPrimitives.ReadUInt16BigEndian(record[3..]), record.Length - 5);
            if (record[0] != ContentHandshake)
            {
                following = record[0];
                break;
            }

            record.Slice(5, available).CopyTo(handshake[handshakeLength..]);
            handshakeLength += available;
            position += 5 + available;
        }

        var awaitingNext = ReadMessages(handshake[..handshakeLength]);
        if (Decided || following is null)
        {
            return;
        }

        // TLS 1.2: ChangeCipherSpec straight after the ServerHello is the abbreviated handshake;
        // an alert, or anything else before a decision, is no resumption.
        Decide(following == ContentChangeCipherSpec && awaitingNext);
    }

    /// <summary>
    /// Reads the complete handshake messages in <paramref name="messages"/>, deciding when they
    /// tell. True when the last one was a TLS 1.2 ServerHello (what follows decides).
    /// </summary>
    private bool ReadMessages(ReadOnlySpan<byte> messages)
    {
        var tls12 = false;
        var position = 0;
        while (messages.Length - position >= 4)
        {
            var type = messages[position];
            var length = (messages[position + 1] << 16) | (messages[position + 2] << 8) | messages[position + 3];
            if (messages.Length - position - 4 < length)
            {
                break;
            }

            var body = messages.Slice(position + 4, length);
            position += 4 + length;
            if (tls12)
            {
                // The message after a TLS 1.2 ServerHello: a ticket means resumption, anything else a full handshake.
                Decide(type == HandshakeNewSessionTicket);
                return false;
            }

            if (type != HandshakeServerHello)
            {
                Decide(false);
                return false;
            }

            switch (ReadServerHello(body))
            {
                case Hello.Retry:
                    continue;
                case Hello.Tls13Resumed:
                    Decide(true);
                    return false;
                case Hello.Tls12:
                    tls12 = true;
                    break;
                default:
                    Decide(false);
                    return false;
            }
        }

        return tls12;
    }

    private enum Hello
    {
        Unreadable,
        Retry,
        Tls12,
        Tls13Full,
        Tls13Resumed,
    }

    private static Hello ReadServerHello(ReadOnlySpan<byte> body)
    {
        // legacy_version(2) random(32) session_id<0..32> cipher_suite(2) compression(1) extensions<0..2^16-1>
        if (body.Length < 2 + 32 + 1)
        {
            return Hello.Unreadable;
        }

        if (body.Slice(2, 32).SequenceEqual(HelloRetryRandom))
        {
            return Hello.Retry;
        }

        var position = 34;
        position += 1 + body[position];
        position += 3;
        if (position > body.Length)
        {
            return Hello.Unreadable;
        }

        var tls13 = false;
        var psk = false;
        if (body.Length - position >= 2)
        {
            var end = Math.Min(body.Length, position + 2 + BinaryPrimitives.ReadUInt16BigEndian(body[position..]));
            position += 2;
            while (end - position >= 4)
            {
                var type = BinaryPrimitives.ReadUInt16BigEndian(body[position..]);
                var length = BinaryPrimitives.ReadUInt16BigEndian(body[(position + 2)..]);
                var data = body.Slice(position + 4, Math.Min(length, end - position - 4));
                if (type == ExtensionSupportedVersions && data.Length >= 2 && BinaryPrimitives.ReadUInt16BigEndian(data) == 0x0304)
                {
                    tls13 = true;
                }
                else if (type == ExtensionPreSharedKey)
                {
                    psk = true;
                }

                position += 4 + length;
            }
        }

        if (tls13)
        {
            return psk ? Hello.Tls13Resumed : Hello.Tls13Full;
        }

        return body[0] == 3 && body[1] == 3 ? Hello.Tls12 : Hello.Unreadable;
    }
}
