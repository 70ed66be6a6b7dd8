using System.Text;

namespace Legate.Http.Http1;

/// <summary>
/// A parsed (or to-be-written) request head. Meant to be reused: the parser calls
/// <see cref="Reset"/> and refills it, keeping the buffers, so a steady stream of requests on a
/// connection allocates nothing here (<see cref="Path"/> as a string does, once per request that asks).
/// </summary>
internal sealed class HttpRequestHead
{
    private byte[] _path = new byte[128];
    private int _pathLength;
    private string? _pathString;

    public HttpHeaderMap Headers { get; } = new();

    /// <summary>Trailers of a chunked body, filled by <see cref="Http1BodyReader"/> when trailers are enabled.</summary>
    public HttpHeaderMap Trailers { get; } = new();

    /// <summary>The method; interned for the methods Envoy knows.</summary>
    public string Method { get; set; } = HttpMethods.Get;

    public HttpMethodKind MethodKind { get; set; } = HttpMethodKind.Get;

    public Http1Version Version { get; set; } = Http1Version.Http11;

    public RequestTargetForm TargetForm { get; set; }

    /// <summary>
    /// Envoy's <c>:path</c>: the origin-form target, the path and query of an absolute-form target
    /// ("/" when it has none), or "*". Empty for CONNECT, whose target is the authority (Host).
    /// </summary>
    public ReadOnlySpan<byte> PathBytes => _path.AsSpan(0, _pathLength);

    /// <summary><see cref="PathBytes"/> as a string (allocates on first use per request).</summary>
    public string Path => _pathString ??= PathStringSlow();

    /// <summary>The string of the previous path, kept across <see cref="SetPath(ReadOnlySpan{byte})"/> and reused while the bytes match.</summary>
    private string? _lastPathString;

    private string PathStringSlow()
    {
        // Clients on one connection mostly repeat paths (health checks, polling, benchmarks): the
        // previous string is reused when its bytes are the same, instead of a new string per request.
        var bytes = PathBytes;
        if (_lastPathString is { } last && last.Length == bytes.Length && Latin1Equals(last, bytes))
        {
            return last;
        }

        return _lastPathString = Encoding.Latin1.GetString(bytes);
    }

    private static bool Latin1Equals(string text, ReadOnlySpan<byte> bytes)
    {
        for (var i = 0; i < bytes.Length; i++)
        {
            if (text[i] != bytes[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Envoy's <c>:scheme</c> from an absolute-form target ("http" or "https"); null otherwise.</summary>
    public string? Scheme { get; set; }

    /// <summary>The Host value (Envoy's <c>:authority</c>); for absolute-form and CONNECT it was taken from the target.</summary>
    public ReadOnlySpan<byte> Authority => Headers.TryGetValue(KnownHeader.Host, out ReadOnlySpan<byte> host) ? host : default;

    public Http1BodyFraming Framing { get; set; }

    /// <summary>The Content-Length value; -1 when the body is not length-delimited.</summary>
    public long ContentLength { get; set; } = -1;

    /// <summary>Whether the connection may carry another request after this one (RFC 9112 §9.3).</summary>
    public bool KeepAlive { get; set; } = true;

    /// <summary>An HTTP/1.1 Upgrade request (Upgrade + Connection: upgrade, h2c excluded); the body is a tunnel.</summary>
    public bool IsUpgrade { get; set; }

    /// <summary><c>Expect: 100-continue</c> on an HTTP/1.1 request (ignored on HTTP/1.0, RFC 9110 §10.1.1).</summary>
    public bool ExpectContinue { get; set; }

    /// <summary>Headers dropped by <see cref="HeadersWithUnderscoresAction.DropHeader"/> (Envoy counts them in a stat).</summary>
    public int DroppedHeadersWithUnderscores { get; set; }

    public void SetPath(ReadOnlySpan<byte> path)
    {
        if (path.Length > _path.Length)
        {
            _path = new byte[Math.Max(path.Length, _path.Length * 2)];
        }

        path.CopyTo(_path);
        _pathLength = path.Length;
        _pathString = null;
    }

    public void SetPath(string path)
    {
        if (path.AsSpan().IndexOfAnyExceptInRange('\u0021', '\u007E') >= 0)
        {
            throw new ArgumentException("A path is visible ASCII only.", nameof(path));
        }

        if (path.Length > _path.Length)
        {
            _path = new byte[Math.Max(path.Length, _path.Length * 2)];
        }

        _pathLength = Encoding.ASCII.GetBytes(path, _path);
        _pathString = path;
    }

    /// <summary>Sets <see cref="Method"/> and <see cref="MethodKind"/> from a string.</summary>
    public void SetMethod(string method)
    {
        Method = method;
        MethodKind = HttpMethods.KindOf(method);
    }

    public void Reset()
    {
        Headers.Clear();
        Trailers.Clear();
        Method = HttpMethods.Get;
        MethodKind = HttpMethodKind.Get;
        Version = Http1Version.Http11;
        TargetForm = RequestTargetForm.Origin;
        _pathLength = 0;
        _pathString = null;
        Scheme = null;
        Framing = Http1BodyFraming.None;
        ContentLength = -1;
        KeepAlive = true;
        IsUpgrade = false;
        ExpectContinue = false;
        DroppedHeadersWithUnderscores = 0;
    }
}
