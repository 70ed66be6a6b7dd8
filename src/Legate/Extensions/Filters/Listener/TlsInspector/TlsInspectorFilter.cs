using Legate.Network;
using Legate.Stats;
using Legate.Tls;

namespace Legate.Extensions.Filters.Listener.TlsInspector;

/// <summary>
/// <c>envoy.filters.listener.tls_inspector</c>: reads the ClientHello without consuming it and
/// sets the transport protocol ("tls"), the requested server name and the ALPN list for filter
/// chain matching. Anything that is not a TLS handshake leaves the connection as raw_buffer.
/// With <c>enable_ja3_fingerprinting</c> the hello's JA3 hash is kept for <c>%TLS_JA3_FINGERPRINT%</c>.
/// Stats at the root, as in Envoy: <c>tls_inspector.{tls_found,tls_not_found,sni_found,sni_not_found,alpn_found,alpn_not_found,client_hello_too_large,read_error}</c>.
/// </summary>
internal sealed class TlsInspectorFilter(StatsStore stats, bool ja3 = false) : IListenerFilter
{
    private readonly Counter _tlsFound = stats.Counter("tls_inspector.tls_found");
    private readonly Counter _tlsNotFound = stats.Counter("tls_inspector.tls_not_found");
    private readonly Counter _sniFound = stats.Counter("tls_inspector.sni_found");
    private readonly Counter _sniNotFound = stats.Counter("tls_inspector.sni_not_found");
    private readonly Counter _alpnFound = stats.Counter("tls_inspector.alpn_found");
    private readonly Counter _alpnNotFound = stats.Counter("tls_inspector.alpn_not_found");
    private readonly Counter _tooLarge = stats.Counter("tls_inspector.client_hello_too_large");
    private readonly Counter _readError = stats.Counter("tls_inspector.read_error");

    public async ValueTask<bool> OnAcceptAsync(ListenerFilterContext context, CancellationToken cancellationToken)
    {
        (ClientHello.ParseStatus Status, ClientHello? Hello) outcome;
        try
        {
            outcome = await SocketPeek.PeekUntilAsync(context.Socket, ClientHello.MaxSize + 64, static (ReadOnlySpan<byte> data, bool closed, out (ClientHello.ParseStatus, ClientHello?) result) =>
            {
                var status = ClientHello.TryParse(data, out var hello);
                result = (status, hello);
                return status != ClientHello.ParseStatus.NeedMoreData || closed;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (System.Net.Sockets.SocketException)
        {
            _readError.Inc();
            return false;
        }

        switch (outcome.Status)
        {
            case ClientHello.ParseStatus.Done:
                var hello = outcome.Hello!;
                _tlsFound.Inc();
                context.TransportProtocol = "tls";
                context.ClientHello = hello;
                if (ja3 && Ja3Fingerprint.Text(hello.Body) is { } text)
                {
                    context.Ja3Hash = Ja3Fingerprint.Hash(text);
                }
                if (hello.ServerName.Length > 0)
                {
                    _sniFound.Inc();
                    context.ServerName = hello.ServerName;
                }
                else
                {
                    _sniNotFound.Inc();
                }

                if (hello.ApplicationProtocols.Length > 0)
                {
                    _alpnFound.Inc();
                    context.ApplicationProtocols = [.. hello.ApplicationProtocols];
                }
                else
                {
                    _alpnNotFound.Inc();
                }

                return true;
            case ClientHello.ParseStatus.Invalid:
                // A TLS record too large or malformed: Envoy closes the connection.
                _tooLarge.Inc();
                return false;
            case ClientHello.ParseStatus.NeedMoreData:
                // The peer closed before a complete hello.
                _readError.Inc();
                return false;
            default:
                _tlsNotFound.Inc();
                return true;
        }
    }
}
