using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;

namespace Legate.Network.Epoll;

/// <summary>
/// The output side of an <see cref="EpollConnection"/>: the codec writes into one pooled buffer and
/// <see cref="FlushAsync"/> sends it right there (no hop to a transport loop); only a full socket
/// send buffer makes the flush wait, for the loop's write edge. After the peer is gone, writes are
/// dropped and flushes report completed, as Kestrel's transport does.
/// </summary>
internal sealed class EpollPipeWriter : PipeWriter, IValueTaskSource<FlushResult>
{
    private const int MinimumBufferSize = 4096;

    private static readonly Action<object> s_onWritable = static state => ((EpollPipeWriter)state).OnWritable();

    private int _gate; // see SpinGate
    private readonly EpollConnection _connection;
    private readonly EpollSocket _socket;
    private ManualResetValueTaskSourceCore<FlushResult> _source;
    private byte[]? _buffer;
    private int _sent;
    private int _flushed;
    private int _written;
    private bool _flushing;
    private bool _draining;
    private bool _cancelNext;
    private bool _broken;
    private bool _completed;
    private TaskCompletionSource? _drained;

    public EpollPipeWriter(EpollConnection connection, EpollSocket socket)
    {
        _connection = connection;
        _socket = socket;
    }

    private enum Step
    {
        Done,
        Wait,
    }

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes
    {
        get
        {
            using (SpinGate.Hold(ref _gate))
            {
                return _written - _flushed;
            }
        }
    }

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        using (SpinGate.Hold(ref _gate))
        {
            Reserve(sizeHint);
            return _buffer.AsMemory(_written);
        }
    }

    public override Span<byte> GetSpan(int sizeHint = 0)
    {
        using (SpinGate.Hold(ref _gate))
        {
            Reserve(sizeHint);
            return _buffer.AsSpan(_written);
        }
    }

    public override void Advance(int bytes)
    {
        using (SpinGate.Hold(ref _gate))
        {
            if (bytes < 0 || _buffer is null || _written + bytes > _buffer.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(bytes));
            }

            _written += bytes;
        }
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        using (SpinGate.Hold(ref _gate))
        {
            if (_flushing)
            {
                throw new InvalidOperationException("a flush is already pending");
            }

            if (_cancelNext)
            {
                _cancelNext = false;
                return new ValueTask<FlushResult>(new FlushResult(isCanceled: true, isCompleted: false));
            }

            _flushed = _written;
            if (SendLocked() == Step.Done)
            {
                return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: _broken));
            }

            _source.Reset();
            _flushing = true;
            return new ValueTask<FlushResult>(this, _source.Version);
        }
    }

    public override void CancelPendingFlush()
    {
        using (SpinGate.Hold(ref _gate))
        {
            if (!_flushing)
            {
                _cancelNext = true;
                return;
            }

            // The bytes stay buffered and go out with the next flush (or the drain at completion).
            _flushing = false;
        }

        _source.SetResult(new FlushResult(isCanceled: true, isCompleted: false));
    }

    /// <summary>
    /// No more data: what is buffered still goes out (in the background when the peer is slow; the
    /// connection's dispose waits for it, an abort drops it).
    /// </summary>
    public override void Complete(Exception? exception = null)
    {
        using (SpinGate.Hold(ref _gate))
        {
            if (_completed)
            {
                return;
            }

            _completed = true;
            _flushed = _written;
            if (_flushing || SendLocked() == Step.Wait)
            {
                _draining = true;
                _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    /// <summary>Completes once what <see cref="Complete"/> left to send is gone (or dropped).</summary>
    public Task WhenDrained()
    {
        using (SpinGate.Hold(ref _gate))
        {
            return _drained?.Task ?? Task.CompletedTask;
        }
    }

    /// <summary>The connection is aborted: unsent bytes are dropped; a pending flush completes.</summary>
    public void Abort()
    {
        TaskCompletionSource? drained;
        bool flushing;
        using (SpinGate.Hold(ref _gate))
        {
            _broken = true;
            Drop();
            flushing = _flushing;
            _flushing = false;
            drained = _drained;
            _draining = false;
        }

        drained?.TrySetResult();
        if (flushing)
        {
            _source.SetResult(new FlushResult(isCanceled: false, isCompleted: true));
        }
    }

    public FlushResult GetResult(short token) => _source.GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _source.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);

    private void Reserve(int sizeHint)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        sizeHint = Math.Max(sizeHint, 1);
        if (_buffer is null)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(MinimumBufferSize, sizeHint));
            return;
        }

        if (_buffer.Length - _written >= sizeHint)
        {
            return;
        }

        if (_sent > 0)
        {
            // Move what is still unsent to the front.
            var length = _written - _sent;
            _buffer.AsSpan(_sent, length).CopyTo(_buffer);
            _flushed -= _sent;
            _written = length;
            _sent = 0;
            if (_buffer.Length - _written >= sizeHint)
            {
                return;
            }
        }

        var larger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _written + sizeHint));
        _buffer.AsSpan(0, _written).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
    }

    /// <summary>Sends the flushed bytes; Wait when the socket's send buffer is full (a write edge will come).</summary>
    private Step SendLocked()
    {
        if (_broken)
        {
            Drop();
            return Step.Done;
        }

        while (_sent < _flushed)
        {
            int sent;
            try
            {
                sent = _socket.TrySend(_buffer.AsSpan(_sent, _flushed - _sent));
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // The peer reset or the connection closed: Kestrel's transport drops the rest too.
                _broken = true;
                Drop();
                _connection.OnTransportClosed();
                return Step.Done;
            }

            if (sent < 0)
            {
                if (_socket.WaitWritable(s_onWritable, this))
                {
                    return Step.Wait;
                }

                continue;
            }

            _sent += sent;
        }

        if (_sent == _written && _buffer is not null)
        {
            // All out: the buffer goes back to the pool until the next write.
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
            _sent = _flushed = _written = 0;
        }

        return Step.Done;
    }

    private void Drop()
    {
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }

        _sent = _flushed = _written = 0;
    }

    /// <summary>A write edge (loop thread), or a wake-up because the socket closed.</summary>
    private void OnWritable()
    {
        bool complete;
        bool broken;
        TaskCompletionSource? drained = null;
        using (SpinGate.Hold(ref _gate))
        {
            if (!_flushing && !_draining)
            {
                return;
            }

            if (SendLocked() == Step.Wait)
            {
                return;
            }

            broken = _broken;
            complete = _flushing;
            _flushing = false;
            if (_draining)
            {
                _draining = false;
                drained = _drained;
            }
        }

        drained?.TrySetResult();
        if (complete)
        {
            _source.SetResult(new FlushResult(isCanceled: false, isCompleted: broken));
        }
    }
}
