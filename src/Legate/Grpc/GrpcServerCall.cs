using System.Buffers;
using System.IO.Pipelines;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;

namespace Legate.Grpc;

/// <summary>
/// The server side of one call (on Kestrel): read the client's messages, write responses, and
/// end with a status — returning from the handler ends with OK, throwing <see cref="GrpcException"/>
/// ends with its status. A handler that writes nothing and fails produces a trailers-only response.
/// </summary>
internal sealed class GrpcServerCall
{
    private readonly HttpContext _context;
    private readonly int _maxMessageBytes;
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    public GrpcServerCall(HttpContext context, int maxMessageBytes)
    {
        _context = context;
        _maxMessageBytes = maxMessageBytes;
        Deadline = GrpcProtocol.ParseTimeout(context.Request.Headers["grpc-timeout"]);
    }

    /// <summary>The method path, e.g. <c>/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources</c>.</summary>
    public string Method => _context.Request.Path.Value ?? string.Empty;

    /// <summary>The client's initial metadata.</summary>
    public IHeaderDictionary RequestHeaders => _context.Request.Headers;

    /// <summary>The client's <c>grpc-timeout</c>, if any.</summary>
    public TimeSpan? Deadline { get; }

    /// <summary>Fires when the client goes away or resets the stream.</summary>
    public CancellationToken CallAborted => _context.RequestAborted;

    /// <summary>Whether any response message (or the headers) went out: after that, no trailers-only response.</summary>
    public bool HeadersSent => _context.Response.HasStarted;

    /// <summary>Headers to send before the first message (initial metadata).</summary>
    public IHeaderDictionary ResponseHeaders => _context.Response.Headers;

    /// <summary>The next request message, or null when the client half-closed.</summary>
    public async ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken = default)
        where T : class, IMessage<T>
    {
        var reader = _context.Request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (TryParse(ref buffer, parser, out var message))
            {
                reader.AdvanceTo(buffer.Start);
                return message;
            }

            if (result.IsCompleted)
            {
                if (buffer.Length > 0)
                {
                    throw new GrpcException(GrpcStatusCode.Internal, "the request ended inside a message");
                }

                reader.AdvanceTo(buffer.End);
                return null;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Writes and flushes one response message; safe to call from several tasks.</summary>
    public async Task WriteAsync(IMessage message, CancellationToken cancellationToken = default)
    {
        var framed = GrpcStreamReader.Frame(message);
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _context.Response.BodyWriter.WriteAsync(framed, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>
    /// Writes and flushes one response message of <paramref name="length"/> bytes that
    /// <paramref name="write"/> produces into the body (a large message made of cached parts is
    /// copied into the stream's pipe, never assembled in one buffer first).
    /// </summary>
    public async Task WriteAsync(int length, Action<IBufferWriter<byte>> write, CancellationToken cancellationToken = default)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var writer = _context.Response.BodyWriter;
            GrpcProtocol.WritePrefix(writer.GetSpan(GrpcProtocol.PrefixLength), length);
            writer.Advance(GrpcProtocol.PrefixLength);
            write(writer);
            await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private bool TryParse<T>(ref ReadOnlySequence<byte> buffer, MessageParser<T> parser, out T? message)
        where T : class, IMessage<T>
    {
        message = null;
        if (buffer.Length < GrpcProtocol.PrefixLength)
        {
            return false;
        }

        Span<byte> prefix = stackalloc byte[GrpcProtocol.PrefixLength];
        buffer.Slice(0, GrpcProtocol.PrefixLength).CopyTo(prefix);
        var length = GrpcProtocol.ReadPrefix(prefix, _maxMessageBytes);
        if (buffer.Length < GrpcProtocol.PrefixLength + length)
        {
            return false;
        }

        var body = buffer.Slice(GrpcProtocol.PrefixLength, length);
        try
        {
            message = parser.ParseFrom(body);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new GrpcException(GrpcStatusCode.Internal, $"cannot parse {typeof(T).Name}: {ex.Message}", ex);
        }

        buffer = buffer.Slice(body.End);
        return true;
    }
}
