using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;

namespace Legate.Grpc;

/// <summary>
/// One gRPC call on a <see cref="GrpcChannel"/>: the request is a stream of messages written with
/// <see cref="Write"/> (ended by <see cref="CompleteRequest"/>), the response a stream read with
/// <see cref="ReadAsync"/> until it returns null (status OK) or throws <see cref="GrpcException"/>
/// (the status from the trailers, the trailers-only response, the HTTP status, the deadline, or the
/// transport). Dispose cancels a call still in progress (RST_STREAM CANCEL).
/// </summary>
internal sealed class GrpcCall<TRequest, TResponse> : IAsyncDisposable
    where TRequest : IMessage
    where TResponse : class, IMessage<TResponse>
{
    private readonly HttpMessageInvoker _invoker;
    private readonly Uri _uri;
    private readonly MessageParser<TResponse> _parser;
    private readonly GrpcCallOptions _options;
    private readonly int _maxMessageBytes;
    private readonly CancellationTokenSource _cancel;
    private readonly GrpcRequestContent _content = new();
    private Task<HttpResponseMessage>? _send;
    private HttpResponseMessage? _response;
    private GrpcStreamReader? _reader;
    private int _disposed;

    internal GrpcCall(HttpMessageInvoker invoker, Uri uri, MessageParser<TResponse> parser, GrpcCallOptions options, int maxMessageBytes)
    {
        _invoker = invoker;
        _uri = uri;
        _parser = parser;
        _options = options;
        _maxMessageBytes = maxMessageBytes;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken);
        if (options.Deadline is { } deadline)
        {
            _cancel.CancelAfter(deadline);
        }
    }

    /// <summary>The final status once the call ended (null while it runs).</summary>
    public GrpcStatusCode? Status { get; private set; }

    /// <summary>The <c>grpc-message</c> of the final status.</summary>
    public string StatusMessage { get; private set; } = string.Empty;

    internal void Start()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, _uri)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = _content,
        };
        request.Headers.TryAddWithoutValidation("te", "trailers");
        request.Headers.UserAgent.Add(new ProductInfoHeaderValue("legate-grpc", "1"));
        if (_options.Deadline is { } deadline)
        {
            request.Headers.TryAddWithoutValidation("grpc-timeout", GrpcProtocol.FormatTimeout(deadline));
        }

        foreach (var (name, value) in _options.Metadata)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        _send = _invoker.SendAsync(request, _cancel.Token);
    }

    /// <summary>Queues a request message; false when the request stream is already complete.</summary>
    public bool Write(TRequest message) => _content.Enqueue(GrpcStreamReader.Frame(message));

    /// <summary>Half-closes: no more request messages (END_STREAM).</summary>
    public void CompleteRequest() => _content.Complete();

    /// <summary>The server's initial metadata (response headers); throws if the call failed before them.</summary>
    public async Task<HttpResponseHeaders> ResponseHeadersAsync()
    {
        var response = await ResponseAsync().ConfigureAwait(false);
        return response.Headers;
    }

    /// <summary>The next response message; null when the server ended the call with status OK.</summary>
    public ValueTask<TResponse?> ReadAsync(CancellationToken cancellationToken = default) =>
        ReadCoreAsync(static (reader, parser, token) => reader.ReadAsync(parser, token), cancellationToken);

    /// <summary>
    /// The next response message's bytes, unparsed (the caller disposes the frame); null when the
    /// server ended the call with status OK. Status and failures as <see cref="ReadAsync"/>.
    /// </summary>
    public ValueTask<GrpcFrame?> ReadFrameAsync(CancellationToken cancellationToken = default) =>
        ReadCoreAsync(static (reader, _, token) => reader.ReadFrameAsync(token), cancellationToken);

    private async ValueTask<T?> ReadCoreAsync<T>(Func<GrpcStreamReader, MessageParser<TResponse>, CancellationToken, ValueTask<T?>> read, CancellationToken cancellationToken)
        where T : class
    {
        if (Status is { } ended)
        {
            return ended == GrpcStatusCode.Ok ? null : throw new GrpcException(ended, StatusMessage);
        }

        using var linked = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(_cancel.Token, cancellationToken) : null;
        var token = linked?.Token ?? _cancel.Token;
        try
        {
            var response = await ResponseAsync().ConfigureAwait(false);
            _reader ??= new GrpcStreamReader(await response.Content.ReadAsStreamAsync(token).ConfigureAwait(false), _maxMessageBytes);
            var message = await read(_reader, _parser, token).ConfigureAwait(false);
            if (message is not null)
            {
                return message;
            }

            // End of the body: the status is in the trailers (or, for trailers-only, the headers).
            var status = Header(response.TrailingHeaders, "grpc-status") ?? Header(response.Headers, "grpc-status");
            var text = Header(response.TrailingHeaders, "grpc-message") ?? Header(response.Headers, "grpc-message");
            if (status is null)
            {
                return Fail<T>(GrpcStatusCode.Internal, "the server ended the call without a grpc-status");
            }

            var code = GrpcProtocol.ParseStatus(status);
            return code == GrpcStatusCode.Ok ? End<T>() : Fail<T>(code, GrpcProtocol.DecodeMessage(text));
        }
        catch (GrpcException ex)
        {
            return Fail<T>(ex.Status, ex.Message, ex);
        }
        catch (OperationCanceledException ex) when (!_options.CancellationToken.IsCancellationRequested && !cancellationToken.IsCancellationRequested && _options.Deadline is not null && _cancel.IsCancellationRequested)
        {
            return Fail<T>(GrpcStatusCode.DeadlineExceeded, "Deadline Exceeded", ex);
        }
        catch (OperationCanceledException ex)
        {
            if (cancellationToken.IsCancellationRequested && !_cancel.IsCancellationRequested)
            {
                // Only this read was given up: the call goes on.
                throw;
            }

            return Fail<T>(GrpcStatusCode.Cancelled, "the call was cancelled", ex);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or ObjectDisposedException)
        {
            return Fail<T>(GrpcStatusCode.Unavailable, ex.Message, ex);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _content.Complete();
        if (Status is null)
        {
            // Still running: cancelling resets the HTTP/2 stream.
            _cancel.Cancel();
        }

        if (_send is not null)
        {
            try
            {
                await _send.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or HttpRequestException or IOException)
            {
                // The outcome was reported by ReadAsync, or nobody asked.
            }
        }

        _response?.Dispose();
        _cancel.Dispose();
    }

    private async Task<HttpResponseMessage> ResponseAsync()
    {
        if (_response is not null)
        {
            return _response;
        }

        var response = await _send!.ConfigureAwait(false);
        _response = response;
        if (response.StatusCode != HttpStatusCode.OK)
        {
            var status = Header(response.Headers, "grpc-status");
            throw status is not null
                ? new GrpcException(GrpcProtocol.ParseStatus(status), GrpcProtocol.DecodeMessage(Header(response.Headers, "grpc-message")))
                : new GrpcException(GrpcProtocol.FromHttpStatus(response.StatusCode), $"HTTP status {(int)response.StatusCode} from the server");
        }

        var contentType = response.Content.Headers.ContentType?.MediaType;
        if (contentType is null || !contentType.StartsWith(GrpcProtocol.ContentType, StringComparison.OrdinalIgnoreCase))
        {
            if (Header(response.Headers, "grpc-status") is null)
            {
                throw new GrpcException(GrpcStatusCode.Unknown, $"the response content-type '{contentType}' is not gRPC");
            }
        }

        return response;
    }

    private T? End<T>()
        where T : class
    {
        Status = GrpcStatusCode.Ok;
        _content.Complete();
        return null;
    }

    private T? Fail<T>(GrpcStatusCode code, string message, Exception? inner = null)
        where T : class
    {
        Status = code;
        StatusMessage = message;
        _content.Complete();
        throw new GrpcException(code, message, inner);
    }

    private static string? Header(HttpHeaders headers, string name) =>
        headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;
}
