using System.Buffers;
using System.Runtime.InteropServices;
using static Legate.Tls.OpenSsl.OpenSslNative;

namespace Legate.Tls.OpenSsl;

/// <summary>
/// A TLS server connection on OpenSSL over a memory BIO pair: OpenSSL never touches the socket;
/// this stream moves bytes between the BIOs and the transport with async reads and writes (no
/// blocking call, no thread per connection). Every SSL call runs under one short lock (OpenSSL
/// allows one caller per SSL at a time; the codecs read and write concurrently); the bytes
/// OpenSSL produced are written to the transport in the order they were produced (the write gate
/// is taken before the BIO is drained).
/// </summary>
internal sealed class OpenSslStream : Stream
{
    private const int TransportChunk = 16 * 1024;

    private readonly Stream _inner;
    private readonly SslHandle _ssl;
    private readonly IntPtr _rbio;
    private readonly IntPtr _wbio;
    private readonly OpenSslServerEngine.HandshakeState _state;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private byte[]? _readBuffer;
    private bool _disposed;
    private bool _shutdownSent;
    private int _backgroundFlush;

    public OpenSslStream(Stream inner, SslHandle ssl, IntPtr rbio, IntPtr wbio, OpenSslServerEngine.HandshakeState state)
    {
        _inner = inner;
        _ssl = ssl;
        _rbio = rbio;
        _wbio = wbio;
        _state = state;
    }

    public string Version { get; private set; } = string.Empty;

    public string Cipher { get; private set; } = string.Empty;

    public string ApplicationProtocol { get; private set; } = string.Empty;

    public bool SessionReused { get; private set; }

    /// <summary>The key exchange group in Envoy's names (<c>X25519</c>, <c>P-256</c>), or "" (none, or one Envoy has no name for).</summary>
    public string Curve { get; private set; } = string.Empty;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <summary>Runs the handshake to its end; throws <see cref="IOException"/> with OpenSSL's reason when it fails.</summary>
    public async Task HandshakeAsync(CancellationToken cancellationToken)
    {
        _readBuffer = new byte[TransportChunk];
        while (true)
        {
            int result, error;
            string errors;
            int reason;
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                ERR_clear_error();
                result = SSL_do_handshake(_ssl.DangerousGetHandle());
                error = result == 1 ? SSL_ERROR_NONE : SSL_get_error(_ssl.DangerousGetHandle(), result);
                errors = DrainErrors(out reason);
            }

            // The alert of a failed handshake goes out too.
            await FlushOutputAsync(cancellationToken).ConfigureAwait(false);
            if (result == 1)
            {
                ReadSession();
                return;
            }

            if (error == SSL_ERROR_WANT_READ)
            {
                if (!await FillAsync(cancellationToken).ConfigureAwait(false))
                {
                    throw new IOException("the peer closed the connection during the TLS handshake");
                }

                continue;
            }

            if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
            {
                _state.NoCertificate();
            }

            throw new IOException(errors.Length > 0 ? errors : $"TLS handshake failed (SSL error {error})");
        }
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0)
        {
            return 0;
        }

        while (true)
        {
            var (result, error, read, errors, pending) = ReadStep(buffer);

            if (pending)
            {
                // Output is waiting (a TLS 1.3 key update answer, an alert, or records a writer
                // sealed and is still sending). The read must not wait for the write gate: a
                // writer stalled on a peer that reads only after its own upload would then stop
                // that upload, and neither side would move. Whoever holds the gate drains the BIO
                // to the end; when nobody does, a background flush takes the gate.
                FlushOutputInBackground();
            }

            if (result == 1)
            {
                return (int)read;
            }

            switch (error)
            {
                case SSL_ERROR_ZERO_RETURN:
                    return 0;
                case SSL_ERROR_WANT_READ:
                    if (!await FillAsync(cancellationToken).ConfigureAwait(false))
                    {
                        // The transport ended without close_notify: end of stream (SSL_OP_IGNORE_UNEXPECTED_EOF).
                        return 0;
                    }

                    continue;
                default:
                    throw new IOException(errors.Length > 0 ? errors : $"TLS read failed (SSL error {error})");
            }
        }
    }

    private unsafe (int Result, int Error, nuint Read, string Errors, bool Pending) ReadStep(Memory<byte> buffer)
    {
        using var pin = buffer.Pin();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ERR_clear_error();
            var result = SSL_read_ex(_ssl.DangerousGetHandle(), (byte*)pin.Pointer, (nuint)buffer.Length, out var read);
            var error = result == 1 ? SSL_ERROR_NONE : SSL_get_error(_ssl.DangerousGetHandle(), result);
            var errors = result == 1 ? string.Empty : DrainErrors(out _);
            return (result, error, read, errors, BIO_ctrl_pending(_wbio) > 0);
        }
    }

    /// <summary>Seals what it can of <paramref name="buffer"/> from <paramref name="offset"/>; the count taken.</summary>
    private unsafe int WriteStep(ReadOnlyMemory<byte> buffer, int offset)
    {
        using var pin = buffer.Pin();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ERR_clear_error();
            var result = SSL_write_ex(_ssl.DangerousGetHandle(), (byte*)pin.Pointer + offset, (nuint)(buffer.Length - offset), out var written);
            if (result != 1)
            {
                var error = SSL_get_error(_ssl.DangerousGetHandle(), result);
                var errors = DrainErrors(out _);
                throw new IOException(errors.Length > 0 ? errors : $"TLS write failed (SSL error {error})");
            }

            return (int)written;
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var offset = 0;
            while (offset < buffer.Length)
            {
                offset += WriteStep(buffer, offset);

                // Records go out as they are sealed, so a large write never piles up in the BIO.
                await DrainLockedAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _writeGate.Release();
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    /// <summary>Sends close_notify (once); the transport stays open for the caller to close.</summary>
    public async Task ShutdownAsync()
    {
        lock (_lock)
        {
            if (_disposed || _shutdownSent)
            {
                return;
            }

            _shutdownSent = true;
            ERR_clear_error();
            SSL_shutdown(_ssl.DangerousGetHandle());
            DrainErrors(out _);
        }

        await FlushOutputAsync(CancellationToken.None).ConfigureAwait(false);
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Close(sync: true);
        }

        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync()
    {
        Close(sync: false);
        return _inner.DisposeAsync();
    }

    private void Close(bool sync)
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        // Under no lock: a reader blocked on the transport wakes up with an error and sees _disposed.
        if (sync)
        {
            _inner.Dispose();
        }

        _ssl.Dispose();
    }

    /// <summary>Reads what the transport has into the read BIO; false at its end.</summary>
    private async ValueTask<bool> FillAsync(CancellationToken cancellationToken)
    {
        var buffer = _readBuffer ?? throw new ObjectDisposedException(nameof(OpenSslStream));
        var read = await _inner.ReadAsync(buffer.AsMemory(0, TransportChunk), cancellationToken).ConfigureAwait(false);
        return Feed(buffer, read);
    }

    private unsafe bool Feed(byte[] buffer, int read)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (read == 0)
            {
                // The BIO now reports end of input instead of "retry".
                BIO_ctrl(_rbio, BIO_C_SET_BUF_MEM_EOF_RETURN, 0, IntPtr.Zero);
                return false;
            }

            fixed (byte* p = buffer)
            {
                BIO_write(_rbio, p, read);
            }
        }

        return true;
    }

    /// <summary>
    /// Sends what OpenSSL produced without making the caller wait: at most one flush waits for the
    /// write gate at a time; it drains whatever is pending once it has the gate (so output produced
    /// after it was started goes too, or starts the next one).
    /// </summary>
    private void FlushOutputInBackground()
    {
        if (Interlocked.CompareExchange(ref _backgroundFlush, 1, 0) != 0)
        {
            return;
        }

        _ = BackgroundFlushAsync();
    }

    private async Task BackgroundFlushAsync()
    {
        try
        {
            await _writeGate.WaitAsync().ConfigureAwait(false);
            try
            {
                Volatile.Write(ref _backgroundFlush, 0);
                await DrainLockedAsync(CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                _writeGate.Release();
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
            // The transport is gone: the reader or the next writer sees it too.
            Volatile.Write(ref _backgroundFlush, 0);
        }
    }

    private async ValueTask FlushOutputAsync(CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await DrainLockedAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>Writes what OpenSSL produced to the transport; the caller holds the write gate.</summary>
    private async ValueTask DrainLockedAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var (chunk, length) = TakeOutput();
            if (chunk is null)
            {
                return;
            }

            try
            {
                if (length > 0)
                {
                    await _inner.WriteAsync(chunk.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(chunk);
            }
        }
    }

    /// <summary>Up to 64 KiB of what OpenSSL wrote, in a pooled array; null when there is none.</summary>
    private unsafe (byte[]? Chunk, int Length) TakeOutput()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return (null, 0);
            }

            var pending = (int)Math.Min((ulong)BIO_ctrl_pending(_wbio), 64 * 1024);
            if (pending == 0)
            {
                return (null, 0);
            }

            var chunk = ArrayPool<byte>.Shared.Rent(pending);
            fixed (byte* p = chunk)
            {
                return (chunk, BIO_read(_wbio, p, pending));
            }
        }
    }

    /// <summary>The negotiated facts, read once the handshake is done.</summary>
    private void ReadSession()
    {
        lock (_lock)
        {
            var ssl = _ssl.DangerousGetHandle();
            Version = Utf8(SSL_get_version(ssl)) ?? string.Empty;
            Cipher = Utf8(SSL_CIPHER_get_name(SSL_get_current_cipher(ssl))) ?? string.Empty;
            SSL_get0_alpn_selected(ssl, out var alpn, out var alpnLength);
            ApplicationProtocol = alpnLength > 0 ? Marshal.PtrToStringAnsi(alpn, (int)alpnLength) : string.Empty;
            SessionReused = SSL_session_reused(ssl) == 1;
            Curve = (int)SSL_ctrl(ssl, SSL_CTRL_GET_NEGOTIATED_GROUP, 0, IntPtr.Zero) switch
            {
                1034 => "X25519",
                415 => "P-256",
                715 => "P-384",
                716 => "P-521",
                1035 => "X448",
                _ => string.Empty,
            };
            if (_state.PeerCertificate is null)
            {
                // A resumed session: the certificate comes from the session, not from a verification.
                var peer = SSL_get1_peer_certificate(ssl);
                if (peer != IntPtr.Zero)
                {
                    try
                    {
                        _state.PeerCertificate = NativeCertificate.Load(peer);
                    }
                    finally
                    {
                        X509_free(peer);
                    }

                    var chain = SSL_get_peer_cert_chain(ssl);
                    var count = chain == IntPtr.Zero ? 0 : OPENSSL_sk_num(chain);
                    if (count > 0)
                    {
                        var collection = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
                        for (var i = 0; i < count; i++)
                        {
                            collection.Add(NativeCertificate.Load(OPENSSL_sk_value(chain, i)));
                        }

                        _state.PeerChain = collection;
                    }
                }
            }
        }
    }
}
