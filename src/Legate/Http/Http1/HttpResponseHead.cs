using System.Text;

namespace Legate.Http.Http1;

/// <summary>
/// A parsed (or to-be-written) response head; reusable like <see cref="HttpRequestHead"/>.
/// </summary>
internal sealed class HttpResponseHead
{
    private byte[] _reason = new byte[32];
    private int _reasonLength;

    public HttpHeaderMap Headers { get; } = new();

    /// <summary>Trailers of a chunked body, filled by <see cref="Http1BodyReader"/> when trailers are enabled.</summary>
    public HttpHeaderMap Trailers { get; } = new();

    public Http1Version Version { get; set; } = Http1Version.Http11;

    public int StatusCode { get; set; } = 200;

    /// <summary>The reason phrase as received. Envoy does not forward it: it writes its own phrase for the code.</summary>
    public ReadOnlySpan<byte> ReasonBytes => _reason.AsSpan(0, _reasonLength);

    /// <summary>The reason phrase as a string (allocates).</summary>
    public string Reason => Encoding.Latin1.GetString(ReasonBytes);

    /// <summary>A 1xx other than 101: an interim response; the final response follows on the same connection.</summary>
    public bool IsInformational => StatusCode is >= 100 and < 200 && StatusCode != 101;

    public Http1BodyFraming Framing { get; set; }

    /// <summary>The Content-Length value; -1 when the body is not length-delimited.</summary>
    public long ContentLength { get; set; } = -1;

    /// <summary>Whether the connection may carry another request after this response.</summary>
    public bool KeepAlive { get; set; } = true;

    public void SetReason(ReadOnlySpan<byte> reason)
    {
        if (reason.Length > _reason.Length)
        {
            _reason = new byte[Math.Max(reason.Length, _reason.Length * 2)];
        }

        reason.CopyTo(_reason);
        _reasonLength = reason.Length;
    }

    public void Reset()
    {
        Headers.Clear();
        Trailers.Clear();
        Version = Http1Version.Http11;
        StatusCode = 200;
        _reasonLength = 0;
        Framing = Http1BodyFraming.None;
        ContentLength = -1;
        KeepAlive = true;
    }
}
