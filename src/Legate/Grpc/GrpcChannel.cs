using System.Net;
using System.Net.Sockets;
using Google.Protobuf;

namespace Legate.Grpc;

/// <summary>
/// A gRPC client connection to one service over cleartext HTTP/2 (prior knowledge) or h2 over TLS
/// (<see cref="GrpcChannelOptions.Tls"/>), on .NET's
/// <see cref="SocketsHttpHandler"/>: HPACK, flow control, stream multiplexing and keepalive PINGs
/// come from the handler; this layer adds gRPC's framing, status and deadlines. Calls share the
/// handler's single connection; a broken connection is replaced on the next call.
/// </summary>
internal sealed class GrpcChannel : IDisposable
{
    private readonly GrpcChannelOptions _options;
    private readonly HttpMessageInvoker _invoker;
    private readonly string _authority;

    public GrpcChannel(GrpcChannelOptions options)
    {
        _options = options;
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ConnectTimeout = options.ConnectTimeout,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            EnableMultipleHttp2Connections = false,
            ConnectCallback = ConnectAsync,
        };
        if (options.KeepAlivePingDelay is { } delay)
        {
            handler.KeepAlivePingDelay = delay;
            handler.KeepAlivePingTimeout = options.KeepAlivePingTimeout;
            // Streams such as xDS are idle for long stretches: ping even without active requests in flight.
            handler.KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always;
        }

        _invoker = new HttpMessageInvoker(handler, disposeHandler: true);
        _authority = options.Authority;
    }

    /// <summary>
    /// Starts a bidirectional streaming call to <paramref name="method"/> (<c>/package.Service/Method</c>).
    /// Request headers go out at once; write messages with <see cref="GrpcCall{TRequest, TResponse}.Write"/>.
    /// </summary>
    public GrpcCall<TRequest, TResponse> StartCall<TRequest, TResponse>(string method, MessageParser<TResponse> parser, GrpcCallOptions? options = null)
        where TRequest : IMessage
        where TResponse : class, IMessage<TResponse>
    {
        // Over TLS the scheme is https (:scheme as Envoy sends it); ConnectAsync then hands the
        // handler a stream it already authenticated, which the handler uses as is.
        var scheme = _options.Tls?.Invoke() is null ? "http://" : "https://";
        var call = new GrpcCall<TRequest, TResponse>(_invoker, new Uri(scheme + _authority + method), parser, options ?? GrpcCallOptions.Default, _options.MaxReceiveMessageBytes);
        call.Start();
        return call;
    }

    /// <summary>A unary call: one request, one response, then an OK status (else <see cref="GrpcException"/>).</summary>
    public async Task<TResponse> UnaryAsync<TRequest, TResponse>(string method, TRequest request, MessageParser<TResponse> parser, GrpcCallOptions? options = null)
        where TRequest : IMessage
        where TResponse : class, IMessage<TResponse>
    {
        await using var call = StartCall<TRequest, TResponse>(method, parser, options);
        call.Write(request);
        call.CompleteRequest();
        var response = await call.ReadAsync().ConfigureAwait(false)
            ?? throw new GrpcException(GrpcStatusCode.Internal, "the server ended a unary call without a response message");
        if (await call.ReadAsync().ConfigureAwait(false) is not null)
        {
            throw new GrpcException(GrpcStatusCode.Internal, "the server sent more than one response to a unary call");
        }

        return response;
    }

    public void Dispose() => _invoker.Dispose();

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var endpoint = await _options.ResolveEndpoint(cancellationToken).ConfigureAwait(false);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var stream = new NetworkStream(socket, ownsSocket: true);
        if (context.InitialRequestMessage.RequestUri?.Scheme != Uri.UriSchemeHttps || _options.Tls?.Invoke() is not { } tls)
        {
            return stream;
        }

        // The cluster's UpstreamTlsContext verifies the server (CA, SANs, pins) in the handshake; gRPC needs ALPN h2.
        var (ssl, _, failure) = await tls.HandshakeAsync(stream, tls.Sni, verifyDnsName: null, Legate.Tls.ClientTlsContext.Http2Alpn, cancellationToken).ConfigureAwait(false);
        return ssl ?? throw new IOException("TLS handshake with the gRPC server failed: " + failure);
    }
}
