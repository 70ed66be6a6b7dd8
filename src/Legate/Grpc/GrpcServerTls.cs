using System.IO.Pipelines;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Legate.Grpc;

/// <summary>
/// TLS for a <see cref="GrpcServer"/>: a Kestrel connection middleware that runs the server
/// handshake (ALPN <c>h2</c>) on the raw connection and hands Kestrel's HTTP/2 codec a transport
/// over the decrypted stream. Kestrel's own <c>UseHttps</c> needs a dependency-injection container
/// with its internal metrics type, which Legate does not build; this needs nothing but the
/// certificate. Kestrel is told HTTP/2 only, so it speaks h2 on whatever the transport carries, and
/// the connection's TLS feature makes it accept the <c>https</c> scheme.
/// </summary>
internal static class GrpcServerTls
{
    private static readonly List<SslApplicationProtocol> H2 = [SslApplicationProtocol.Http2];

    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware(X509Certificate2 certificate) => next => async connection =>
    {
        var raw = connection.Transport;
        var ssl = new SslStream(new DuplexPipeStream(raw), leaveInnerStreamOpen: false);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            await ssl.AuthenticateAsServerAsync(
                new SslServerAuthenticationOptions { ServerCertificate = certificate, ApplicationProtocols = H2, ClientCertificateRequired = false },
                timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is System.Security.Authentication.AuthenticationException or IOException or OperationCanceledException)
        {
            // A client that does not trust us (or speaks cleartext) goes away; nothing to serve.
            await ssl.DisposeAsync().ConfigureAwait(false);
            return;
        }

        var input = PipeReader.Create(ssl, new StreamPipeReaderOptions(leaveOpen: true));
        var output = PipeWriter.Create(ssl, new StreamPipeWriterOptions(leaveOpen: true));
        connection.Transport = new DuplexPipe(input, output);
        // Kestrel takes a connection with these features for TLS (requests' :scheme https is then
        // accepted) and, HTTP/2 only over TLS, wants ALPN to have chosen h2.
        var feature = new TlsFeature(ssl.NegotiatedApplicationProtocol.Protocol);
        connection.Features.Set<ITlsConnectionFeature>(feature);
        connection.Features.Set<ITlsApplicationProtocolFeature>(feature);
        try
        {
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            await input.CompleteAsync().ConfigureAwait(false);
            await output.CompleteAsync().ConfigureAwait(false);
            await ssl.DisposeAsync().ConfigureAwait(false);
            connection.Transport = raw;
        }
    };

    /// <summary>The negotiated ALPN; no client certificates are asked for.</summary>
    private sealed class TlsFeature(ReadOnlyMemory<byte> applicationProtocol) : ITlsConnectionFeature, ITlsApplicationProtocolFeature
    {
        public ReadOnlyMemory<byte> ApplicationProtocol { get; } = applicationProtocol;

        public X509Certificate2? ClientCertificate
        {
            get => null;
            set { }
        }

        public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) => Task.FromResult<X509Certificate2?>(null);
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }

    /// <summary>The raw connection as a stream (what SslStream reads and writes).</summary>
    private sealed class DuplexPipeStream(IDuplexPipe pipe) : Stream
    {
        private readonly Stream _input = pipe.Input.AsStream(leaveOpen: true);
        private readonly Stream _output = pipe.Output.AsStream(leaveOpen: true);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => _input.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _input.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _input.ReadAsync(buffer, offset, count, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => _output.Write(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _output.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _output.WriteAsync(buffer, offset, count, cancellationToken);

        public override void Flush() => _output.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => _output.FlushAsync(cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
