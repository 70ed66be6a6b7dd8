using System.Buffers;
using Legate.Http.Http1;

namespace Legate.Http;

/// <summary>
/// The codec side of one stream's response (Envoy's ResponseEncoder): what the connection manager
/// writes to once filters are done with headers, body and trailers. HTTP/1.1 frames bytes on the
/// connection; HTTP/2 maps to frames of the stream.
/// </summary>
internal abstract class ResponseEncoder
{
    /// <summary>Writes an informational (1xx) head; the final head comes later.</summary>
    public abstract ValueTask Encode1xxHeadersAsync(HttpResponseHead head);

    public abstract ValueTask EncodeHeadersAsync(HttpResponseHead head, bool endStream);

    public abstract ValueTask EncodeDataAsync(ReadOnlySequence<byte> data, bool endStream);

    /// <summary>Trailers end the stream.</summary>
    public abstract ValueTask EncodeTrailersAsync(HttpHeaderMap trailers);

    /// <summary>Pushes buffered output to the peer, waiting while the peer reads slower than we write.</summary>
    public abstract ValueTask FlushAsync();

    /// <summary>
    /// A local reply answered a stream that cannot continue (a stream timeout): finish it and end
    /// the stream's transport cleanly once the reply is out. HTTP/1.1 closes the connection after
    /// the response; the default resets the stream.
    /// </summary>
    public virtual void EndAfterLocalReply() => ResetStream();

    /// <summary>
    /// Aborts the stream without a (complete) response: HTTP/1.1 closes the connection, HTTP/2
    /// sends RST_STREAM. Safe to call more than once and from any thread.
    /// </summary>
    public abstract void ResetStream();
}
