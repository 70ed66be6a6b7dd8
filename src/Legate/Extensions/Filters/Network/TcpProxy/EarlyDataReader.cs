using System.Buffers;
using System.Net.Sockets;

namespace Legate.Extensions.Filters.Network.TcpProxy;

/// <summary>
/// tcp_proxy's early reception (<c>max_early_data_bytes</c>): reads the downstream while the
/// upstream is not connected yet, into one buffer of at most the limit, then stops reading
/// (back-pressure: the client's bytes wait in the kernel) until the session takes the bytes.
/// The bytes are held in <c>downstream_cx_rx_bytes_buffered</c> and counted in
/// <c>downstream_cx_rx_bytes_total</c> once they went upstream, as every relayed byte.
/// At most one read is pending at a time; once stopped, no new read starts, and the pending one
/// (if any) is either awaited by the stream relay as its own first read, or cancelled before the
/// epoll relay takes the socket (a cancelled socket receive consumes nothing).
/// </summary>
internal sealed class EarlyDataReader : IDisposable
{
    private readonly Stream _from;
    private readonly int _limit;
    private readonly TcpProxyStats _stats;
    private readonly Action _onRead;
    private readonly CancellationTokenSource _cancel;
    private readonly TaskCompletionSource<bool> _firstData = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private byte[]? _buffer;
    private int _count;
    private int _held;
    private volatile bool _stopping;

    /// <param name="onRead">Called after each read (the idle timeout restarts on every read).</param>
    /// <param name="closed">The session's close: cancels a pending read.</param>
    public EarlyDataReader(Stream from, int limit, TcpProxyStats stats, Action onRead, CancellationToken closed)
    {
        _from = from;
        _limit = limit;
        _stats = stats;
        _onRead = onRead;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(closed);
        _buffer = ArrayPool<byte>.Shared.Rent(limit);
        Reading = ReadAsync();
    }

    /// <summary>Completes when reading stopped: the limit, the end of the stream, an error, or <see cref="Stop"/> after the read then pending.</summary>
    public Task Reading { get; }

    /// <summary>True once bytes arrived; false when the stream ended (or broke, or the session closed) before any.</summary>
    public Task<bool> FirstData => _firstData.Task;

    /// <summary>Bytes held so far (at the start of <see cref="Buffer"/>).</summary>
    public int Count => Volatile.Read(ref _count);

    public byte[]? Buffer => _buffer;

    /// <summary>The downstream's FIN came while reading early: pass it on as a half-close once the bytes went.</summary>
    public bool Ended { get; private set; }

    /// <summary>The downstream broke while reading early.</summary>
    public Exception? Error { get; private set; }

    /// <summary>No new read starts; a pending one still completes into the buffer.</summary>
    public void Stop() => _stopping = true;

    /// <summary>Stops and cancels the pending read (for a socket: nothing it would have read is lost).</summary>
    public void Cancel()
    {
        _stopping = true;
        try
        {
            _cancel.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Hands the buffer (with <see cref="Count"/> bytes) over: the caller returns it to the pool. Only once <see cref="Reading"/> completed.</summary>
    public byte[]? TakeBuffer()
    {
        Unhold();
        var buffer = _buffer;
        _buffer = null;
        return buffer;
    }

    /// <summary>
    /// Ends early reading for good: a pending read is cancelled, and the buffer goes back to the pool
    /// once that read completed (never while it may still write into it).
    /// </summary>
    public void Dispose()
    {
        Cancel();
        _ = Reading.ContinueWith(static (_, s) => ((EarlyDataReader)s!).Released(), this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>
    /// ON_DOWNSTREAM_DATA with <c>max_early_data_bytes: 0</c> on a plaintext socket: waits until the
    /// client sent something, reading nothing (a zero-byte receive, then a peek that tells bytes
    /// from the FIN). False when the client closed (or broke) before sending.
    /// </summary>
    public static async Task<bool> WaitForDataAsync(Socket socket, CancellationToken closed)
    {
        try
        {
            await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, closed).ConfigureAwait(false);
            var one = new byte[1];
            return socket.Receive(one, SocketFlags.Peek) > 0;
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            return false;
        }
    }

    private async Task ReadAsync()
    {
        try
        {
            while (!_stopping && _count < _limit)
            {
                var read = await _from.ReadAsync(_buffer.AsMemory(_count, _limit - _count), _cancel.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    Ended = true;
                    return;
                }

                if (_count == 0)
                {
                    _stats.EarlyDataReceivedCountTotal.Inc();
                }

                _stats.DownstreamCxRxBytesBuffered.Add(read);
                Interlocked.Add(ref _held, read);
                Volatile.Write(ref _count, _count + read);
                _onRead();
                _firstData.TrySetResult(true);
            }
        }
        catch (OperationCanceledException) when (_cancel.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException or System.Security.Authentication.AuthenticationException)
        {
            Error = ex;
        }
        finally
        {
            _firstData.TrySetResult(Volatile.Read(ref _count) > 0);
        }
    }

    private void Released()
    {
        Unhold();
        if (_buffer is { } buffer)
        {
            _buffer = null;
            ArrayPool<byte>.Shared.Return(buffer);
        }

        _cancel.Dispose();
    }

    private void Unhold()
    {
        var held = Interlocked.Exchange(ref _held, 0);
        if (held > 0)
        {
            _stats.DownstreamCxRxBytesBuffered.Sub(held);
        }
    }
}
