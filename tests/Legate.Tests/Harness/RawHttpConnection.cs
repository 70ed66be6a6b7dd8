using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Legate.Tests.Harness;

/// <summary>
/// One TCP connection spoken byte by byte, for either side of the proxy: a test client writing
/// exact request bytes (malformed ones too) and reading responses as they are on the wire, or a
/// <see cref="RawUpstream"/> connection reading requests and writing exact response bytes (trailers,
/// garbage, early closes) that Kestrel would not produce. Reads are buffered; every read waits at
/// most <see cref="Timeout"/> (30 s) and throws <see cref="TimeoutException"/> after it.
/// </summary>
internal sealed class RawHttpConnection : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;
    private long _bytesWritten;

    public RawHttpConnection(Socket socket, int id = 0)
    {
        Socket = socket;
        Id = id;
        Stream = new NetworkStream(socket, ownsSocket: true);
    }

    public Socket Socket { get; }

    public NetworkStream Stream { get; }

    /// <summary>1, 2, … in order of acceptance on a <see cref="RawUpstream"/>; 0 for a client.</summary>
    public int Id { get; }

    /// <summary>Bytes this side has written so far (updated as each write completes).</summary>
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    /// <summary>A client connection to <paramref name="endpoint"/>.</summary>
    public static async Task<RawHttpConnection> ConnectAsync(IPEndPoint endpoint, int? receiveBuffer = null)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (receiveBuffer is { } size)
        {
            socket.ReceiveBufferSize = size;
        }

        await socket.ConnectAsync(endpoint).WaitAsync(Timeout);
        return new RawHttpConnection(socket);
    }

    public Task WriteAsync(string ascii) => WriteAsync(Encoding.Latin1.GetBytes(ascii));

    public async Task WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default)
    {
        await Stream.WriteAsync(bytes, cancellationToken);
        Interlocked.Add(ref _bytesWritten, bytes.Length);
    }

    /// <summary>
    /// Everything up to and including the blank line that ends a head, as Latin-1 text;
    /// null on EOF before the first byte.
    /// </summary>
    public async Task<string?> ReadHeadAsync()
    {
        var text = new StringBuilder();
        while (true)
        {
            var line = await ReadLineAsync();
            if (line is null)
            {
                if (text.Length == 0)
                {
                    return null;
                }

                throw new EndOfStreamException("EOF inside a head: " + text);
            }

            text.Append(line).Append("\r\n");
            if (line.Length == 0)
            {
                return text.ToString();
            }
        }
    }

    /// <summary>One line without its CRLF (a bare LF also ends it); null on EOF at a line start.</summary>
    public async Task<string?> ReadLineAsync()
    {
        var line = new StringBuilder();
        while (true)
        {
            if (_start == _end && !await FillAsync())
            {
                return line.Length == 0 ? null : throw new EndOfStreamException("EOF inside a line: " + line);
            }

            var span = _buffer.AsSpan(_start, _end - _start);
            var lf = span.IndexOf((byte)'\n');
            if (lf < 0)
            {
                line.Append(Encoding.Latin1.GetString(span));
                _start = _end;
                continue;
            }

            line.Append(Encoding.Latin1.GetString(span[..lf]));
            _start += lf + 1;
            if (line.Length > 0 && line[^1] == '\r')
            {
                line.Length--;
            }

            return line.ToString();
        }
    }

    public async Task<byte[]> ReadExactlyAsync(long count)
    {
        var result = new byte[count];
        var filled = 0;
        while (filled < count)
        {
            if (_start == _end && !await FillAsync())
            {
                throw new EndOfStreamException($"EOF after {filled} of {count} bytes");
            }

            var n = (int)Math.Min(count - filled, _end - _start);
            _buffer.AsSpan(_start, n).CopyTo(result.AsSpan(filled));
            _start += n;
            filled += n;
        }

        return result;
    }

    /// <summary>Reads and discards <paramref name="count"/> bytes, hashing them into <paramref name="hash"/>.</summary>
    public async Task ReadIntoAsync(long count, System.Security.Cryptography.IncrementalHash hash)
    {
        var left = count;
        while (left > 0)
        {
            if (_start == _end && !await FillAsync())
            {
                throw new EndOfStreamException($"EOF with {left} of {count} bytes left");
            }

            var n = (int)Math.Min(left, _end - _start);
            hash.AppendData(_buffer, _start, n);
            _start += n;
            left -= n;
        }
    }

    /// <summary>A chunked body: the data and the trailer lines (without the final blank line).</summary>
    public async Task<(byte[] Body, List<string> ChunkSizes, List<string> Trailers)> ReadChunkedAsync()
    {
        var body = new MemoryStream();
        var sizes = new List<string>();
        while (true)
        {
            var sizeLine = await ReadLineAsync() ?? throw new EndOfStreamException("EOF before a chunk size");
            sizes.Add(sizeLine);
            var size = long.Parse(sizeLine.Split(';')[0].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (size == 0)
            {
                var trailers = new List<string>();
                while (await ReadLineAsync() is { Length: > 0 } trailer)
                {
                    trailers.Add(trailer);
                }

                return (body.ToArray(), sizes, trailers);
            }

            body.Write(await ReadExactlyAsync(size));
            if (await ReadLineAsync() is not "")
            {
                throw new InvalidDataException("chunk data not followed by CRLF");
            }
        }
    }

    /// <summary>Everything until the peer closes.</summary>
    public async Task<byte[]> ReadToEndAsync()
    {
        var all = new MemoryStream();
        while (true)
        {
            if (_start == _end && !await FillAsync())
            {
                return all.ToArray();
            }

            all.Write(_buffer, _start, _end - _start);
            _start = _end;
        }
    }

    /// <summary>True when the peer closes (or resets) the connection with nothing more to read; false if bytes arrive first.</summary>
    public async Task<bool> WaitForCloseAsync()
    {
        try
        {
            return _start == _end && !await FillAsync();
        }
        catch (IOException)
        {
            return true;
        }
    }

    /// <summary>
    /// One response as on the wire: head, then the body by its framing (none for
    /// <paramref name="noBody"/> — a HEAD request — and for 1xx/204/304; close-delimited when unframed).
    /// </summary>
    public async Task<RawResponse> ReadResponseAsync(bool noBody = false)
    {
        var head = await ReadHeadAsync() ?? throw new EndOfStreamException("EOF before a response");
        var response = RawResponse.ParseHead(head);
        if (noBody || response.Status is < 200 or 204 or 304)
        {
            return response;
        }

        if (response.Header("transfer-encoding") is { } te && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            var (body, sizes, trailers) = await ReadChunkedAsync();
            return response with { Body = body, ChunkSizes = sizes, Trailers = trailers };
        }

        if (response.Header("content-length") is { } length)
        {
            return response with { Body = await ReadExactlyAsync(long.Parse(length, CultureInfo.InvariantCulture)) };
        }

        return response with { Body = await ReadToEndAsync() };
    }

    /// <summary>One request (head and body by its framing); null when the peer closed between requests.</summary>
    public async Task<RawRequest?> ReadRequestAsync()
    {
        var head = await ReadHeadAsync();
        if (head is null)
        {
            return null;
        }

        var request = RawRequest.ParseHead(head);
        if (request.Header("transfer-encoding") is { } te && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            var (body, _, trailers) = await ReadChunkedAsync();
            return request with { Body = body, Trailers = trailers };
        }

        if (request.Header("content-length") is { } length)
        {
            return request with { Body = await ReadExactlyAsync(long.Parse(length, CultureInfo.InvariantCulture)) };
        }

        return request;
    }

    private async Task<bool> FillAsync()
    {
        _start = _end = 0;
        using var timeout = new CancellationTokenSource(Timeout);
        int read;
        try
        {
            read = await Stream.ReadAsync(_buffer, timeout.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            throw new TimeoutException("nothing read within 30 s");
        }

        _end = read;
        return read > 0;
    }

    public async ValueTask DisposeAsync()
    {
        await Stream.DisposeAsync();
    }
}

/// <summary>A response as read off the wire by <see cref="RawHttpConnection.ReadResponseAsync"/>.</summary>
internal sealed record RawResponse(string StatusLine, int Status, IReadOnlyList<KeyValuePair<string, string>> Headers, string RawHead)
{
    public byte[] Body { get; init; } = [];

    /// <summary>The chunk-size lines of a chunked body, the final <c>0</c> included.</summary>
    public IReadOnlyList<string> ChunkSizes { get; init; } = [];

    public IReadOnlyList<string> Trailers { get; init; } = [];

    public string BodyText => Encoding.UTF8.GetString(Body);

    /// <summary>All values of <paramref name="name"/> (any case) joined with ", ", or null.</summary>
    public string? Header(string name)
    {
        var values = Headers.Where(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value).ToList();
        return values.Count == 0 ? null : string.Join(", ", values);
    }

    public int Count(string name) => Headers.Count(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase));

    public static RawResponse ParseHead(string head)
    {
        var lines = head.Split("\r\n");
        var statusLine = lines[0];
        var parts = statusLine.Split(' ', 3);
        var headers = new List<KeyValuePair<string, string>>();
        foreach (var line in lines.Skip(1))
        {
            if (line.Length == 0)
            {
                break;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            headers.Add(new(line[..colon], line[(colon + 1)..].Trim()));
        }

        return new RawResponse(statusLine, int.Parse(parts[1], CultureInfo.InvariantCulture), headers, head);
    }
}

/// <summary>A request as read off the wire by <see cref="RawHttpConnection.ReadRequestAsync"/>.</summary>
internal sealed record RawRequest(string RequestLine, string Method, string Target, IReadOnlyList<KeyValuePair<string, string>> Headers, string RawHead)
{
    public byte[] Body { get; init; } = [];

    public IReadOnlyList<string> Trailers { get; init; } = [];

    public string BodyText => Encoding.UTF8.GetString(Body);

    public string? Header(string name)
    {
        var values = Headers.Where(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value).ToList();
        return values.Count == 0 ? null : string.Join(", ", values);
    }

    public static RawRequest ParseHead(string head)
    {
        var response = RawResponse.ParseHead(head.Insert(head.IndexOf(' ', StringComparison.Ordinal) + 1, "0 "));
        var parts = head[..head.IndexOf("\r\n", StringComparison.Ordinal)].Split(' ');
        return new RawRequest(parts[0] + " " + parts[1] + " " + parts[2], parts[0], parts[1], response.Headers, head);
    }
}
