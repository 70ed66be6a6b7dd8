using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;
using Microsoft.AspNetCore.Connections;

namespace Legate.Network.Epoll;

/// <summary>
/// The input side of an <see cref="EpollConnection"/>: one pooled buffer that the socket is read
/// into only when the codec asks for more (no read-ahead: the peer's close is seen through the
/// loop's EPOLLRDHUP instead), handed out as a single-segment sequence. Unconsumed bytes are moved
/// to the front when the tail runs short, and the buffer grows up to the per-connection buffer limit
/// (then reading stops until the codec consumes, as Kestrel's transport pauses). While waiting with
/// nothing buffered a grown buffer goes back to the pool: an idle connection holds 8 KiB (Kestrel's
/// transport held a 4 KiB block for its pending receive).
/// </summary>
internal sealed class EpollPipeReader : PipeReader, IValueTaskSource<ReadResult>
{
    private const int MinimumBufferSize = 8 * 1024;
    private const int MinimumTail = 2048;

    private static readonly Action<object> s_onReadable = static state => ((EpollPipeReader)state).OnReadable();
    // Queued, not run inline: a token cancelled already calls this synchronously from
    // UnsafeRegister, which ReadAsync calls while it holds the (non-reentrant) gate.
    private static readonly Action<object?> s_onTokenCancelled = static state =>
        ThreadPool.UnsafeQueueUserWorkItem(static reader => reader.OnTokenCancelled(), (EpollPipeReader)state!, preferLocal: false);

    private int _gate; // see SpinGate
    private readonly EpollConnection _connection;
    private readonly EpollSocket _socket;
    private readonly int _limit;
    private ManualResetValueTaskSourceCore<ReadResult> _source;
    private CancellationTokenRegistration _tokenRegistration;
    private CancellationToken _token;
    private byte[]? _buffer;
    private int _start;
    private int _end;
    private int _examined;
    private bool _endOfStream;
    private Exception? _error;
    private bool _cancelNext;
    private bool _waiting;
    private bool _completed;

    public EpollPipeReader(EpollConnection connection, EpollSocket socket, int limit)
    {
        _connection = connection;
        _socket = socket;
        _limit = Math.Max(limit, MinimumBufferSize);
    }

    private enum Step
    {
        Ready,
        Wait,
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        using (SpinGate.Hold(ref _gate))
        {
            ObjectDisposedException.ThrowIf(_completed, this);
            if (_waiting)
            {
                throw new InvalidOperationException("a read is already pending");
            }

            try
            {
                while (true)
                {
                    if (TryReadLocked(out var result) == Step.Ready)
                    {
                        return new ValueTask<ReadResult>(result);
                    }

                    if (cancellationToken.IsCancellationRequested)
                    {
                        return ValueTask.FromCanceled<ReadResult>(cancellationToken);
                    }

                    _source.Reset();
                    _waiting = true;
                    if (_buffer is not null && !CanReceive() || _socket.WaitReadable(s_onReadable, this))
                    {
                        if (cancellationToken.CanBeCanceled)
                        {
                            _token = cancellationToken;
                            _tokenRegistration = cancellationToken.UnsafeRegister(s_onTokenCancelled, this);
                        }

                        return new ValueTask<ReadResult>(this, _source.Version);
                    }

                    // Readable meanwhile: receive again.
                    _waiting = false;
                }
            }
            catch (Exception ex) when (ex is not InvalidOperationException)
            {
                _waiting = false;
                return ValueTask.FromException<ReadResult>(ex);
            }
        }
    }

    public override bool TryRead(out ReadResult result)
    {
        using (SpinGate.Hold(ref _gate))
        {
            ObjectDisposedException.ThrowIf(_completed, this);
            try
            {
                return TryReadLocked(out result) == Step.Ready;
            }
            catch (Exception ex) when (ex is ConnectionResetException or ConnectionAbortedException)
            {
                // A peek (is anything left? is an idle connection still good?) reports a broken
                // connection as ended, not as an exception; the next ReadAsync throws it.
                result = new ReadResult(ReadOnlySequence<byte>.Empty, isCanceled: false, isCompleted: true);
                return true;
            }
        }
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        using (SpinGate.Hold(ref _gate))
        {
            if (consumed.GetObject() is not byte[] { Length: > 0 })
            {
                // Positions of an empty sequence (ReadOnlySequence.Empty is over an empty array): nothing was buffered.
                return;
            }

            if (!ReferenceEquals(consumed.GetObject(), _buffer) || !ReferenceEquals(examined.GetObject(), _buffer))
            {
                throw new InvalidOperationException("the position does not belong to the last read");
            }

            var start = consumed.GetInteger();
            var seen = examined.GetInteger();
            if (start < _start || start > _end || seen < start || seen > _end)
            {
                throw new ArgumentOutOfRangeException(nameof(consumed), "the position is outside the last read");
            }

            _start = start;
            _examined = seen;
            if (_start == _end)
            {
                _start = _end = _examined = 0;
            }
        }
    }

    public override void CancelPendingRead()
    {
        ReadResult result;
        using (SpinGate.Hold(ref _gate))
        {
            if (!_waiting)
            {
                _cancelNext = true;
                return;
            }

            _waiting = false;
            _tokenRegistration.Unregister();
            _cancelNext = false;
            result = Result(canceled: true);
        }

        _source.SetResult(result);
    }

    public override void Complete(Exception? exception = null)
    {
        using (SpinGate.Hold(ref _gate))
        {
            if (_completed)
            {
                return;
            }

            _completed = true;
            if (!_waiting)
            {
                ReturnBuffer();
            }
        }
    }

    /// <summary>The connection was aborted: a pending read fails, later reads too.</summary>
    public void Abort(Exception error)
    {
        using (SpinGate.Hold(ref _gate))
        {
            _error ??= error;
            if (!_waiting)
            {
                return;
            }

            _waiting = false;
            _tokenRegistration.Unregister();
        }

        _source.SetException(error);
    }

    /// <summary>Gives the buffer back (the connection is closed and nobody reads any more).</summary>
    public void Release()
    {
        using (SpinGate.Hold(ref _gate))
        {
            if (!_waiting)
            {
                ReturnBuffer();
            }
        }
    }

    public ReadResult GetResult(short token) => _source.GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _source.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);

    /// <summary>Returns what is there (new bytes, the end of the stream, a cancel) or says wait.</summary>
    private Step TryReadLocked(out ReadResult result)
    {
        if (_cancelNext)
        {
            _cancelNext = false;
            result = Result(canceled: true);
            return Step.Ready;
        }

        if (_end > _examined || _endOfStream)
        {
            result = Result(canceled: false);
            return Step.Ready;
        }

        if (_error is not null)
        {
            throw _error;
        }

        result = default;
        if (!CanReceive())
        {
            // Full at the buffer limit: nothing more is read until the codec consumes.
            return Step.Wait;
        }

        int read;
        try
        {
            read = _socket.TryReceive(_buffer.AsSpan(_end));
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            _error = ex is SocketException { SocketErrorCode: SocketError.ConnectionReset } socketError
                ? new ConnectionResetException(socketError.Message, socketError)
                : new ConnectionAbortedException(ex.Message, ex);
            _connection.OnTransportClosed();
            throw _error;
        }

        if (read > 0)
        {
            _end += read;
            result = Result(canceled: false);
            return Step.Ready;
        }

        if (read == 0)
        {
            _endOfStream = true;
            _connection.OnTransportClosed();
            result = Result(canceled: false);
            return Step.Ready;
        }

        if (_start == _end && _buffer!.Length > MinimumBufferSize)
        {
            // Nothing buffered while waiting: a buffer that grew goes back; the first one stays, as
            // renting it again for every read missed the shared pool's caches when reads and
            // waits happen on different threads (HTTP/2).
            ReturnBuffer();
        }

        return Step.Wait;
    }

    /// <summary>Makes room to receive into; false when the buffer is full at the limit.</summary>
    private bool CanReceive()
    {
        if (_buffer is null)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(MinimumBufferSize);
            _start = _end = _examined = 0;
            return true;
        }

        if (_buffer.Length - _end >= MinimumTail)
        {
            return true;
        }

        if (_start > 0)
        {
            // Move the unconsumed bytes to the front.
            var length = _end - _start;
            _buffer.AsSpan(_start, length).CopyTo(_buffer);
            _examined -= _start;
            _end = length;
            _start = 0;
            if (_buffer.Length - _end >= MinimumTail)
            {
                return true;
            }
        }

        if (_buffer.Length >= _limit)
        {
            return _end < _buffer.Length;
        }

        var larger = ArrayPool<byte>.Shared.Rent(Math.Min(_limit, _buffer.Length * 2));
        _buffer.AsSpan(0, _end).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
        return true;
    }

    private ReadResult Result(bool canceled)
    {
        var buffer = _buffer is null || _end == _start ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(_buffer, _start, _end - _start);
        return new ReadResult(buffer, canceled, _endOfStream);
    }

    private void ReturnBuffer()
    {
        if (_buffer is not null && _start == _end)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
            _start = _end = _examined = 0;
        }
    }

    /// <summary>A read edge (loop thread), or a wake-up because the socket closed.</summary>
    private void OnReadable()
    {
        ReadResult result = default;
        Exception? error = null;
        using (SpinGate.Hold(ref _gate))
        {
            if (!_waiting)
            {
                return;
            }

            try
            {
                while (true)
                {
                    if (TryReadLocked(out result) == Step.Ready)
                    {
                        break;
                    }

                    if (!CanReceive() || _socket.WaitReadable(s_onReadable, this))
                    {
                        return;
                    }
                }
            }
            catch (Exception ex)
            {
                error = ex;
            }

            _waiting = false;
            _tokenRegistration.Unregister();
        }

        if (error is not null)
        {
            _source.SetException(error);
        }
        else
        {
            _source.SetResult(result);
        }
    }

    private void OnTokenCancelled()
    {
        CancellationToken token;
        using (SpinGate.Hold(ref _gate))
        {
            if (!_waiting)
            {
                return;
            }

            _waiting = false;
            token = _token;
        }

        _source.SetException(new OperationCanceledException(token));
    }
}
