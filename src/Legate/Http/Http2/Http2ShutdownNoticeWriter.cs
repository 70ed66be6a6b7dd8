using System.Buffers;
using System.IO.Pipelines;

namespace Legate.Http.Http2;

/// <summary>
/// The output pipe Kestrel's HTTP/2 codec writes to, passed through unchanged, with one addition:
/// <see cref="SendShutdownNotice"/> puts Envoy's drain "shutdown notice" — a GOAWAY with last-stream-id
/// 2^31-1 and NO_ERROR (RFC 9113 §6.8) — on the wire between two of Kestrel's frames. Kestrel has no API
/// to send a GOAWAY on its own schedule (its graceful close sends the notice only to a busy connection and
/// then closes as soon as the streams are done), so Envoy's drain sequence — notice, <c>drain_timeout</c>
/// in which new streams are still served, then the final GOAWAY — needs the notice written from here.
/// </summary>
/// <remarks>
/// The notice may only go between frames: this writer follows the frame headers in the bytes Kestrel
/// advances (a 9-byte header announces the payload length) and writes the notice when Kestrel is at a
/// frame boundary and holds no buffer of the pipe; otherwise Kestrel's next advance that ends a frame
/// writes it, and Kestrel's flush that follows sends it. Flushes are never concurrent: Kestrel's own
/// wait for the notice's flush and vice versa. Everything takes one uncontended lock.
/// </remarks>
internal sealed class Http2ShutdownNoticeWriter : PipeWriter
{
    private const int FrameHeaderLength = 9;

    /// <summary>GOAWAY (type 7), length 8, stream 0; last-stream-id 2^31-1; error NO_ERROR.</summary>
    private static readonly byte[] s_notice = [0, 0, 8, 7, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0];

    private readonly PipeWriter _inner;
    private readonly object _sync = new();
    private Memory<byte> _lent;
    private int _headerSeen;
    private int _length;
    private long _payloadLeft;
    private bool _wanted;
    private bool _sent;
    private bool _completed;
    private bool _flushing;
    private Task? _noticeFlush;

    public Http2ShutdownNoticeWriter(PipeWriter inner)
    {
        _inner = inner;
    }

    /// <summary>True once the notice went into the pipe.</summary>
    public bool NoticeSent
    {
        get
        {
            lock (_sync)
            {
                return _sent;
            }
        }
    }

    public override bool CanGetUnflushedBytes => _inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => _inner.UnflushedBytes;

    private bool AtBoundary => _headerSeen == 0 && _payloadLeft == 0;

    /// <summary>Sends the shutdown notice once (at the next frame boundary, flushed); false when it was already sent or asked for.</summary>
    public bool SendShutdownNotice()
    {
        lock (_sync)
        {
            if (_sent || _wanted || _completed)
            {
                return false;
            }

            if (!AtBoundary || !_lent.IsEmpty || _flushing)
            {
                // Kestrel is inside a frame, holds a buffer or is flushing: the advance that ends its
                // frame (then its flush) or the end of its flush writes and sends the notice.
                _wanted = true;
                return true;
            }

            WriteNotice();
            _flushing = true;

            // Under the lock: Kestrel's writes wait for this call (the pipe takes writes while a flush is pending).
            ValueTask<FlushResult> flush;
            try
            {
                flush = _inner.FlushAsync();
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException)
            {
                _flushing = false;
                return true;
            }

            _noticeFlush = FlushNoticeAsync(flush);
            return true;
        }
    }

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        lock (_sync)
        {
            _lent = _inner.GetMemory(sizeHint);
            return _lent;
        }
    }

    public override Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

    public override void Advance(int bytes)
    {
        lock (_sync)
        {
            Track(_lent.Span[..bytes]);
            _lent = default;
            _inner.Advance(bytes);
            if (_wanted && AtBoundary)
            {
                WriteNotice();
            }
        }
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        Task? notice;
        lock (_sync)
        {
            notice = _noticeFlush;
            _flushing = true;
        }

        if (notice is not null && !notice.IsCompleted)
        {
            return FlushAfterNoticeAsync(notice, cancellationToken);
        }

        var flush = _inner.FlushAsync(cancellationToken);
        if (!flush.IsCompletedSuccessfully)
        {
            return AwaitFlushAsync(flush, cancellationToken);
        }

        return EndFlush() ? FlushAgainAsync(cancellationToken) : flush;
    }

    public override void CancelPendingFlush() => _inner.CancelPendingFlush();

    public override void Complete(Exception? exception = null)
    {
        lock (_sync)
        {
            _completed = true;
        }

        _inner.Complete(exception);
    }

    public override ValueTask CompleteAsync(Exception? exception = null)
    {
        lock (_sync)
        {
            _completed = true;
        }

        return _inner.CompleteAsync(exception);
    }

    /// <summary>Follows the frame headers in <paramref name="written"/> (never copies a payload).</summary>
    private void Track(ReadOnlySpan<byte> written)
    {
        while (!written.IsEmpty)
        {
            if (_payloadLeft > 0)
            {
                var skip = (int)Math.Min(_payloadLeft, written.Length);
                _payloadLeft -= skip;
                written = written[skip..];
                continue;
            }

            if (_headerSeen < 3)
            {
                _length = (_length << 8) | written[0];
            }

            _headerSeen++;
            written = written[1..];
            if (_headerSeen == FrameHeaderLength)
            {
                _payloadLeft = _length;
                _headerSeen = 0;
                _length = 0;
            }
        }
    }

    private void WriteNotice()
    {
        _inner.Write(s_notice);
        _wanted = false;
        _sent = true;
    }

    /// <summary>
    /// Ends a flush; true when a notice waiting for it was written now and needs another flush (the
    /// caller makes it before Kestrel may flush again).
    /// </summary>
    private bool EndFlush()
    {
        lock (_sync)
        {
            if (_wanted && AtBoundary && _lent.IsEmpty && !_completed)
            {
                WriteNotice();
                return true;
            }

            _flushing = false;
            return false;
        }
    }

    private async ValueTask<FlushResult> AwaitFlushAsync(ValueTask<FlushResult> flush, CancellationToken cancellationToken)
    {
        var result = await flush.ConfigureAwait(false);
        while (EndFlush())
        {
            result = await _inner.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    private async ValueTask<FlushResult> FlushAgainAsync(CancellationToken cancellationToken)
    {
        FlushResult result;
        do
        {
            result = await _inner.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        while (EndFlush());
        return result;
    }

    private async ValueTask<FlushResult> FlushAfterNoticeAsync(Task notice, CancellationToken cancellationToken)
    {
        await notice.ConfigureAwait(false);
        lock (_sync)
        {
            _flushing = true;
        }

        return await AwaitFlushAsync(_inner.FlushAsync(cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    private async Task FlushNoticeAsync(ValueTask<FlushResult> flush)
    {
        try
        {
            await flush.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException or OperationCanceledException)
        {
            // The connection went away: there is nobody left to notify.
        }
        finally
        {
            lock (_sync)
            {
                _flushing = false;
            }
        }
    }
}
