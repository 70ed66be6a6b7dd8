using System.Buffers;
using System.IO.Pipelines;
using Legate.Http.Http1;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Legate.Http.Http2;

/// <summary>
/// The stream → codec half of an HTTP/2 stream: writes what the connection manager encodes into
/// Kestrel's response. Status and headers into <c>Response</c> (Kestrel orders its known headers
/// first; nothing else is reordered), body into <c>Response.BodyWriter</c> (a flush waits for the
/// stream's flow-control window: back-pressure), trailers into <see cref="IHttpResponseTrailersFeature"/>
/// (sent with END_STREAM, as gRPC needs), a reset as RST_STREAM through <see cref="IHttpResetFeature"/>.
/// </summary>
internal sealed class Http2ResponseEncoder : ResponseEncoder
{
    /// <summary>RST_STREAM INTERNAL_ERROR: the proxy gives up on a stream the client still wants.</summary>
    public const int InternalError = 0x2;

    /// <summary>RST_STREAM CANCEL: the stream is no longer needed (the client went away first).</summary>
    public const int Cancel = 0x8;

    private readonly HttpConnectionManagerConfig _config;
    private HttpContext _context;
    private int _reset;
    private int _downstreamGone;
    private bool _completed;
    private bool _headersEncoded;
    private readonly Http2HeaderStrings _headerStrings = new();

    public Http2ResponseEncoder(HttpContext context, HttpConnectionManagerConfig config)
    {
        _context = context;
        _config = config;
    }

    public HttpStream Stream { get; set; } = null!;

    /// <summary>The request head the stream decodes; pooled with the encoder and the stream.</summary>
    public HttpRequestHead Head { get; } = new();

    public HttpConnectionManagerConfig Config => _config;

    /// <summary>True when the stream ended with nothing outstanding: the encoder, its stream and head may serve the next stream.</summary>
    public bool Reusable => Stream.EndedCleanly && _completed && _reset == 0 && Volatile.Read(ref _downstreamGone) == 0 && ExtendedConnect is null;

    /// <summary>Prepares a pooled encoder for the next stream of the connection.</summary>
    public void Reuse(HttpContext context)
    {
        _context = context;
        _reset = 0;
        _downstreamGone = 0;
        _completed = false;
        _headersEncoded = false;
    }

    /// <summary>Set when the stream is an extended CONNECT: a 101 or 2xx head opens its tunnel (see <see cref="Http2ExtendedConnect"/>).</summary>
    public Http2ExtendedConnect? ExtendedConnect { get; set; }

    /// <summary>The connection's facts (null without them): where a response's headers ask whether to drain.</summary>
    public Http2ConnectionInfo? ConnectionInfo { get; set; }

    /// <summary>The accepted extended CONNECT's tunnel: the response body goes here, not to the response writer.</summary>
    private Stream? _tunnel;

    private bool IsDone => _completed || Volatile.Read(ref _reset) != 0;

    /// <summary>
    /// Interim responses are not forwarded: Kestrel has no API for arbitrary 1xx heads, and Envoy
    /// drops them too by default (100-continue is answered by Kestrel itself when the body is read).
    /// </summary>
    public override ValueTask Encode1xxHeadersAsync(HttpResponseHead head) => ValueTask.CompletedTask;

    public override ValueTask EncodeHeadersAsync(HttpResponseHead head, bool endStream)
    {
        if (IsDone)
        {
            return ValueTask.CompletedTask;
        }

        _headersEncoded = true;
        ConnectionInfo?.OnResponseHeaders(Config.Stats);
        var extended = ExtendedConnect;
        var accepting = extended is not null && !endStream && head.StatusCode is 101 or (>= 200 and < 300);
        try
        {
            var response = _context.Response;
            response.StatusCode = head.StatusCode;
            var headers = response.Headers;
            var fields = head.Headers;
            for (var i = 0; i < fields.Count; i++)
            {
                if (IsConnectionSpecific(fields.GetKnown(i)) || (accepting && IsUpgradeOnly(fields, i, extended!)))
                {
                    continue;
                }

                headers.Append(_headerStrings.Name(fields, i), _headerStrings.Value(fields, i));
            }
        }
        catch (InvalidOperationException ex)
        {
            // Kestrel refused a header (the response had already started, or a value it will not send).
            _config.Log.Debug($"h2 response headers rejected: {ex.Message}");
            Stream.ResetStream(ResponseFlags.None, ResponseCodeDetails.LocalReset);
            return ValueTask.CompletedTask;
        }

        if (accepting)
        {
            return AcceptTunnelAsync(extended!);
        }

        extended?.Refuse();
        return endStream ? CompleteAsync() : ValueTask.CompletedTask;
    }

    public override ValueTask EncodeDataAsync(ReadOnlySequence<byte> data, bool endStream)
    {
        if (IsDone)
        {
            return ValueTask.CompletedTask;
        }

        if (_tunnel is not null)
        {
            return WriteTunnelAsync(_tunnel, data, endStream);
        }

        if (!data.IsEmpty)
        {
            try
            {
                var writer = _context.Response.BodyWriter;
                foreach (var segment in data)
                {
                    writer.Write(segment.Span);
                }
            }
            catch (Exception ex) when (ex is InvalidOperationException or IOException or ConnectionAbortedException or ObjectDisposedException)
            {
                _config.Log.Debug($"h2 response body write failed: {ex.Message}");
                OnRequestAborted();
                return ValueTask.CompletedTask;
            }
        }

        return endStream ? CompleteAsync() : FlushAsync();
    }

    public override ValueTask EncodeTrailersAsync(HttpHeaderMap trailers)
    {
        if (IsDone)
        {
            return ValueTask.CompletedTask;
        }

        var feature = _context.Features.Get<IHttpResponseTrailersFeature>();
        if (feature is not null && !feature.Trailers.IsReadOnly)
        {
            var target = feature.Trailers;
            foreach (var field in trailers)
            {
                if (!IsConnectionSpecific(field.Known))
                {
                    target.Append(field.Name, field.Value);
                }
            }
        }

        return CompleteAsync();
    }

    public override ValueTask FlushAsync()
    {
        // Before the head there is nothing to push, and flushing Kestrel's writer would start a 200 response.
        // A tunnel's writes are flushed as they are made.
        if (IsDone || !_headersEncoded || _tunnel is not null)
        {
            return ValueTask.CompletedTask;
        }

        ValueTask<FlushResult> flush;
        try
        {
            flush = _context.Response.BodyWriter.FlushAsync(Stream.ResetToken);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or ConnectionAbortedException or ObjectDisposedException)
        {
            OnRequestAborted();
            return ValueTask.CompletedTask;
        }

        if (flush.IsCompletedSuccessfully)
        {
            OnFlushed(flush.Result);
            return ValueTask.CompletedTask;
        }

        return AwaitFlushAsync(flush);
    }

    /// <summary>Ends the response (END_STREAM, with trailers when some were set); once.</summary>
    public async ValueTask CompleteAsync()
    {
        if (IsDone)
        {
            return;
        }

        _completed = true;
        ExtendedConnect?.Refuse();
        try
        {
            await _context.Response.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or ConnectionAbortedException or OperationCanceledException or ObjectDisposedException)
        {
            _config.Log.Debug($"h2 response completion failed: {ex.Message}");
            OnRequestAborted();
        }
    }

    /// <summary>RST_STREAM: INTERNAL_ERROR while the client waits, CANCEL once it is gone.</summary>
    public override void ResetStream()
    {
        if (Interlocked.Exchange(ref _reset, 1) != 0)
        {
            return;
        }

        ExtendedConnect?.Refuse();
        var gone = Volatile.Read(ref _downstreamGone) != 0;
        if (!gone)
        {
            _config.Stats.DownstreamRqTxReset.Inc();
        }

        try
        {
            if (_context.Features.Get<IHttpResetFeature>() is { } reset)
            {
                reset.Reset(gone ? Cancel : InternalError);
            }
            else
            {
                _context.Abort();
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or ObjectDisposedException)
        {
            // The stream already ended.
        }
    }

    /// <summary>The client reset the stream or the connection closed (Kestrel's RequestAborted): Envoy's DC.</summary>
    public void OnRequestAborted()
    {
        if (Interlocked.Exchange(ref _downstreamGone, 1) != 0 || Volatile.Read(ref _reset) != 0)
        {
            return;
        }

        ExtendedConnect?.Refuse();

        if (!Stream.ResponseComplete)
        {
            _config.Stats.DownstreamRqRxReset.Inc();
        }

        Stream.OnDownstreamDisconnect();
    }

    /// <summary>Headers that are meaningless (and malformed, RFC 9113 §8.2.2) on an HTTP/2 stream.</summary>
    private static bool IsConnectionSpecific(KnownHeader known) =>
        known is KnownHeader.Connection or KnownHeader.KeepAlive or KnownHeader.ProxyConnection
            or KnownHeader.TransferEncoding or KnownHeader.Upgrade;

    /// <summary>
    /// Fields of the upstream's HTTP/1.1 upgrade answer that mean nothing on the accepted extended
    /// CONNECT: <c>content-length: 0</c> (RFC 8441's 200 has a tunnel, not an empty body) and, when
    /// Legate generated the request's key, the <c>sec-websocket-accept</c> that answers it.
    /// </summary>
    private static bool IsUpgradeOnly(HttpHeaderMap fields, int index, Http2ExtendedConnect extended) =>
        (fields.GetKnown(index) == KnownHeader.ContentLength && fields.GetValueBytes(index).SequenceEqual("0"u8))
        || (extended.GeneratedKey && fields.GetKnown(index) == KnownHeader.None && System.Text.Ascii.EqualsIgnoreCase(fields.GetNameBytes(index), "sec-websocket-accept"u8));

    private async ValueTask AcceptTunnelAsync(Http2ExtendedConnect extended)
    {
        _tunnel = await extended.AcceptAsync(_context.Response).ConfigureAwait(false);
        if (_tunnel is null)
        {
            OnRequestAborted();
        }
    }

    private async ValueTask WriteTunnelAsync(Stream tunnel, ReadOnlySequence<byte> data, bool endStream)
    {
        try
        {
            foreach (var segment in data)
            {
                await tunnel.WriteAsync(segment, Stream.ResetToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or ConnectionAbortedException or ObjectDisposedException or OperationCanceledException)
        {
            _config.Log.Debug($"h2 extended CONNECT tunnel write failed: {ex.Message}");
            OnRequestAborted();
            return;
        }

        if (endStream)
        {
            await CompleteAsync().ConfigureAwait(false);
        }
    }

    private void OnFlushed(FlushResult result)
    {
        if (result.IsCompleted || result.IsCanceled)
        {
            OnRequestAborted();
        }
    }

    private async ValueTask AwaitFlushAsync(ValueTask<FlushResult> flush)
    {
        FlushResult result;
        try
        {
            result = await flush.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or ConnectionAbortedException or OperationCanceledException or ObjectDisposedException)
        {
            OnRequestAborted();
            return;
        }

        OnFlushed(result);
    }
}
