using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;

namespace Legate.Tests.Harness;

/// <summary>
/// TLS for a <see cref="ScriptedUpstream"/> (<c>StartAsync(…, tls: new UpstreamTls(cert))</c>): each
/// connection is terminated by an <see cref="SslStream"/> in a Kestrel connection middleware (ALPN
/// <c>h2</c> on an HTTP/2 port, <c>http/1.1</c> otherwise), and every handshake is recorded.
/// </summary>
internal sealed record UpstreamTls(X509Certificate2 Certificate)
{
    /// <summary>Ask for a client certificate and refuse the handshake without one.</summary>
    public bool RequireClientCertificate { get; init; }

    /// <summary>A client certificate must chain to this root (custom trust); null accepts any.</summary>
    public X509Certificate2? ClientRoot { get; init; }

    /// <summary>Protocol range; None = the platform's default.</summary>
    public SslProtocols Protocols { get; init; } = SslProtocols.None;

    /// <summary>Every completed handshake, in order.</summary>
    public ConcurrentQueue<UpstreamHandshake> Handshakes { get; } = new();

    /// <summary>Why handshakes failed, in order.</summary>
    public ConcurrentQueue<string> Failures { get; } = new();

    /// <summary>Runs the server handshake, then <paramref name="next"/> over the decrypted pipes.</summary>
    internal async Task ServeAsync(ConnectionContext connection, ConnectionDelegate next, bool http2)
    {
        var transport = connection.Transport;
        var ssl = new SslStream(new DuplexPipeStream(transport.Input, transport.Output), leaveInnerStreamOpen: true);
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificate = Certificate,
            ClientCertificateRequired = RequireClientCertificate,
            EnabledSslProtocols = Protocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            ApplicationProtocols = [http2 ? SslApplicationProtocol.Http2 : SslApplicationProtocol.Http11],
            RemoteCertificateValidationCallback = (_, certificate, _, _) => AcceptClient(certificate),
        };

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await ssl.AuthenticateAsServerAsync(options, timeout.Token);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException)
        {
            Failures.Enqueue(ex.Message);
            await ssl.DisposeAsync();
            return;
        }

        var client = ssl.RemoteCertificate is { } c ? X509CertificateLoader.LoadCertificate(c.GetRawCertData()) : null;
        Handshakes.Enqueue(new UpstreamHandshake(ssl.TargetHostName, client, ssl.NegotiatedApplicationProtocol.ToString(), ssl.SslProtocol));
        var reader = PipeReader.Create(ssl, new StreamPipeReaderOptions(leaveOpen: true));
        var writer = PipeWriter.Create(ssl, new StreamPipeWriterOptions(leaveOpen: true));
        connection.Transport = new Duplex(reader, writer);
        try
        {
            await next(connection);
        }
        finally
        {
            connection.Transport = transport;
            await ssl.DisposeAsync();
        }
    }

    private bool AcceptClient(X509Certificate? certificate)
    {
        if (certificate is null)
        {
            return !RequireClientCertificate;
        }

        if (ClientRoot is null)
        {
            return true;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ClientRoot);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
    }

    private sealed class Duplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }

    /// <summary>A stream reading one pipe and writing the other (what SslStream runs on).</summary>
    private sealed class DuplexPipeStream(PipeReader input, PipeWriter output) : Stream
    {
        private readonly Stream _read = input.AsStream(leaveOpen: true);
        private readonly Stream _write = output.AsStream(leaveOpen: true);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => _write.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => _write.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => _read.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _read.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _read.ReadAsync(buffer, offset, count, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => _write.Write(buffer, offset, count);

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await _write.WriteAsync(buffer, cancellationToken);
            await _write.FlushAsync(cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

/// <summary>One TLS handshake an upstream completed: the SNI it got ("" for none), the client certificate, ALPN and version.</summary>
internal sealed record UpstreamHandshake(string ServerName, X509Certificate2? ClientCertificate, string Alpn, SslProtocols Protocol);
