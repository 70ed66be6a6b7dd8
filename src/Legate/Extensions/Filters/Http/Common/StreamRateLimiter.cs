using System.Buffers;
using Legate.Common;
using Legate.Http;
using Legate.Http.Http1;

namespace Legate.Extensions.Filters.Http.Common;

/// <summary>
/// Paces one stream's response body to a rate (Envoy's StreamRateLimiter, used by the fault
/// filter's <c>response_rate_limit</c>). The filter hands every body chunk to <see cref="Write"/>
/// and returns <see cref="FilterDataStatus.StopIterationNoBuffer"/>; one drain task per stream
/// sends what the token bucket allows every <see cref="FillInterval"/> through the filters after
/// the owner (<see cref="HttpStream.InjectEncodedDataAsync"/>). As Envoy's: the bucket holds one
/// second of bytes and starts with one fill interval's worth; trailers wait until the body is out;
/// past the buffer limit the upstream side waits (<see cref="WaitForRoomAsync"/>) until half of it
/// has drained.
/// </summary>
internal sealed class StreamRateLimiter : IEncodeInjector
{
    /// <summary>Envoy's default fill interval.</summary>
    public static readonly TimeSpan FillInterval = TimeSpan.FromMilliseconds(50);

    private readonly HttpStream _stream;
    private readonly HttpFilter _owner;
    private readonly TokenBucket _bucket;
    private readonly TimeProvider _time;
    private readonly long _maxBuffered;
    private readonly object _lock = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // The bytes taken and not yet sent: _buffer[_head.._head+_length).
    private byte[] _buffer = [];
    private int _head;
    private int _length;
    private bool _sawEnd;
    private HttpHeaderMap? _trailers;
    private bool _started;
    private bool _finished;
    private TaskCompletionSource? _dataWaiter;
    private TaskCompletionSource? _roomWaiter;

    public StreamRateLimiter(HttpStream stream, HttpFilter owner, ulong limitKbps, long maxBuffered, TimeProvider time)
    {
        _stream = stream;
        _owner = owner;
        _time = time;
        _maxBuffered = Math.Max(1, maxBuffered);
        var bytesPerSecond = (double)limitKbps * 1024;
        _bucket = new TokenBucket(bytesPerSecond, bytesPerSecond, time, bytesPerSecond * FillInterval.TotalSeconds);
        stream.EnableEncodeInjection(this);
    }

    /// <summary>The drain's end; already complete when no body came (a headers-only response).</summary>
    public Task Completion => Volatile.Read(ref _started) ? _completion.Task : Task.CompletedTask;

    /// <summary>Takes a body chunk (copied: the caller's bytes are only lent for the call).</summary>
    public void Write(ReadOnlySequence<byte> data, bool endStream)
    {
        bool start;
        lock (_lock)
        {
            if (_finished)
            {
                // The stream was reset and the drain is gone: nothing more goes out.
                return;
            }

            Append(data);
            _sawEnd |= endStream;
            start = WakeDrain();
        }

        if (start)
        {
            _ = DrainAsync();
        }
    }

    /// <summary>Trailers arrived: true when they must wait for the body (the limiter sends them on), false when they can go now.</summary>
    public bool OnTrailers(HttpHeaderMap trailers)
    {
        lock (_lock)
        {
            _sawEnd = true;
            if (!_started || _finished)
            {
                // No body came (or the drain is gone): nothing to wait for.
                return false;
            }

            // Copied: the upstream's response head (and its trailers) may serve another request
            // once the upstream side is done with it.
            _trailers = new HttpHeaderMap();
            _trailers.CopyFrom(trailers);
            WakeDrain();
            return true;
        }
    }

    public ValueTask WaitForRoomAsync()
    {
        TaskCompletionSource waiter;
        lock (_lock)
        {
            if (_length <= _maxBuffered)
            {
                return ValueTask.CompletedTask;
            }

            waiter = _roomWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        // The drain completes it at the low watermark, or when it ends (a reset included).
        return new ValueTask(waiter.Task);
    }

    private void Append(ReadOnlySequence<byte> data)
    {
        var needed = _length + (int)data.Length;
        if (_head + needed > _buffer.Length)
        {
            if (needed <= _buffer.Length)
            {
                _buffer.AsSpan(_head, _length).CopyTo(_buffer);
            }
            else
            {
                var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, 16 * 1024));
                _buffer.AsSpan(_head, _length).CopyTo(bigger);
                if (_buffer.Length > 0)
                {
                    ArrayPool<byte>.Shared.Return(_buffer);
                }

                _buffer = bigger;
            }

            _head = 0;
        }

        data.CopyTo(_buffer.AsSpan(_head + _length));
        _length += (int)data.Length;
    }

    /// <summary>Under the lock: wakes the drain when it waits for data; true when there is none yet (the caller starts it, outside the lock).</summary>
    private bool WakeDrain()
    {
        if (!_started)
        {
            Volatile.Write(ref _started, true);
            return true;
        }

        if (_dataWaiter is { } waiter)
        {
            _dataWaiter = null;
            waiter.TrySetResult();
        }

        return false;
    }

    private async Task DrainAsync()
    {
        var reset = _stream.ResetToken;
        byte[]? piece = null;
        try
        {
            while (true)
            {
                int count;
                bool last;
                HttpHeaderMap? trailers = null;
                Task? waitForData = null;
                TaskCompletionSource? room = null;
                lock (_lock)
                {
                    count = (int)_bucket.Consume(_length, allowPartial: true);
                    if (count > 0)
                    {
                        if (piece is null || piece.Length < count)
                        {
                            if (piece is not null)
                            {
                                ArrayPool<byte>.Shared.Return(piece);
                            }

                            piece = ArrayPool<byte>.Shared.Rent(count);
                        }

                        _buffer.AsSpan(_head, count).CopyTo(piece);
                        _head += count;
                        _length -= count;
                        if (_length == 0)
                        {
                            _head = 0;
                        }
                    }

                    last = _sawEnd && _length == 0 && _trailers is null;
                    if (_length == 0 && _trailers is not null)
                    {
                        trailers = _trailers;
                    }
                    else if (_length == 0 && !_sawEnd)
                    {
                        _dataWaiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        waitForData = _dataWaiter.Task;
                    }

                    if (_roomWaiter is not null && _length <= _maxBuffered / 2)
                    {
                        room = _roomWaiter;
                        _roomWaiter = null;
                    }
                }

                room?.TrySetResult();
                if (count > 0 || last)
                {
                    await _stream.InjectEncodedDataAsync(_owner, count > 0 ? new ReadOnlySequence<byte>(piece!, 0, count) : default, last).ConfigureAwait(false);
                }

                if (trailers is not null)
                {
                    await _stream.InjectEncodedTrailersAsync(_owner, trailers).ConfigureAwait(false);
                    return;
                }

                if (last || _stream.IsReset)
                {
                    return;
                }

                if (waitForData is not null)
                {
                    await waitForData.WaitAsync(reset).ConfigureAwait(false);
                }
                else
                {
                    await Task.Delay(FillInterval, _time, reset).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The stream was reset: nothing more goes out.
        }
        catch (Exception ex)
        {
            _stream.Config.Log.Error($"response rate limiter failed: {ex.Message}");
            _stream.ResetStream();
        }
        finally
        {
            if (piece is not null)
            {
                ArrayPool<byte>.Shared.Return(piece);
            }

            lock (_lock)
            {
                _finished = true;
                if (_buffer.Length > 0)
                {
                    ArrayPool<byte>.Shared.Return(_buffer);
                    _buffer = [];
                }

                _length = _head = 0;
                _roomWaiter?.TrySetResult();
            }

            _completion.TrySetResult();
        }
    }
}
