using System.Text;
using Legate.Network;
using Legate.Stats;

namespace Legate.Extensions.Filters.Listener.HttpInspector;

/// <summary>
/// <c>envoy.filters.listener.http_inspector</c>: on a plaintext connection, recognises the HTTP/2
/// preface (application protocol "h2c") or an HTTP/1.x request line ("http/1.1", "http/1.0") from
/// peeked bytes. Skipped when a transport protocol other than raw_buffer was detected (TLS).
/// Stats: <c>http_inspector.{http10_found,http11_found,http2_found,http_not_found,read_error}</c>.
/// </summary>
internal sealed class HttpInspectorFilter(StatsStore stats) : IListenerFilter
{
    private const int MaxRequestLine = 8192;
    private static readonly byte[] s_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();

    private readonly Counter _http10 = stats.Counter("http_inspector.http10_found");
    private readonly Counter _http11 = stats.Counter("http_inspector.http11_found");
    private readonly Counter _http2 = stats.Counter("http_inspector.http2_found");
    private readonly Counter _notFound = stats.Counter("http_inspector.http_not_found");
    private readonly Counter _readError = stats.Counter("http_inspector.read_error");

    private enum Kind
    {
        NotHttp,
        Http10,
        Http11,
        Http2,
    }

    public async ValueTask<bool> OnAcceptAsync(ListenerFilterContext context, CancellationToken cancellationToken)
    {
        if (context.TransportProtocol.Length > 0 && context.TransportProtocol != "raw_buffer")
        {
            return true;
        }

        Kind kind;
        try
        {
            kind = await SocketPeek.PeekUntilAsync(context.Socket, MaxRequestLine, static (ReadOnlySpan<byte> data, bool closed, out Kind result) =>
            {
                result = Kind.NotHttp;
                return Decide(data, ref result) || closed;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (System.Net.Sockets.SocketException)
        {
            _readError.Inc();
            return false;
        }

        switch (kind)
        {
            case Kind.Http2:
                _http2.Inc();
                context.ApplicationProtocols = ["h2c"];
                break;
            case Kind.Http11:
                _http11.Inc();
                context.ApplicationProtocols = ["http/1.1"];
                break;
            case Kind.Http10:
                _http10.Inc();
                context.ApplicationProtocols = ["http/1.0"];
                break;
            default:
                _notFound.Inc();
                break;
        }

        return true;
    }

    /// <summary>True when the bytes so far decide (sets <paramref name="result"/>).</summary>
    private static bool Decide(ReadOnlySpan<byte> data, ref Kind result)
    {
        var prefaceLength = Math.Min(data.Length, s_preface.Length);
        if (data[..prefaceLength].SequenceEqual(s_preface.AsSpan(0, prefaceLength)))
        {
            if (data.Length >= s_preface.Length)
            {
                result = Kind.Http2;
                return true;
            }

            return false;
        }

        var lineEnd = data.IndexOf("\r\n"u8);
        if (lineEnd < 0)
        {
            // No line yet: give up early only when the bytes cannot start a request line.
            var space = data.IndexOf((byte)' ');
            if (space == 0 || (space < 0 && data.IndexOfAnyExcept(s_tokenChars) >= 0))
            {
                return true;
            }

            return false;
        }

        var line = data[..lineEnd];
        var first = line.IndexOf((byte)' ');
        var last = line.LastIndexOf((byte)' ');
        if (first <= 0 || last <= first || line[..first].IndexOfAnyExcept(s_tokenChars) >= 0)
        {
            return true;
        }

        var version = line[(last + 1)..];
        if (version.SequenceEqual("HTTP/1.1"u8))
        {
            result = Kind.Http11;
        }
        else if (version.SequenceEqual("HTTP/1.0"u8))
        {
            result = Kind.Http10;
        }

        return true;
    }

    private static readonly System.Buffers.SearchValues<byte> s_tokenChars =
        System.Buffers.SearchValues.Create(Encoding.ASCII.GetBytes("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"));
}
