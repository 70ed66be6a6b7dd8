using System.Buffers;
using System.Net.Sockets;
using Legate.Http;
using Legate.Network;
using Legate.Network.Epoll;
using Legate.Server.Logging;

namespace Legate.Extensions.Filters.Network.TcpProxy;

/// <summary>
/// tcp_proxy's byte relay for plaintext on both sides, on Legate's epoll engine: each direction
/// is a small state machine run inline by the loop thread that saw its socket become readable (or
/// the other side writable), as nginx's stream proxy does: receive, send, and back to waiting,
/// without a thread-pool hop, a task or an allocation per read. The .NET-stream relay
/// (<see cref="TcpProxySession"/>'s pumps) costs a completion through .NET's socket engine and a
/// thread-pool dispatch per read and per write, which is what many small exchanges pay for.
/// Semantics are the pumps': one buffer per direction (<see cref="MaxReadBytes"/> at most, the
/// listener's buffer limit when smaller), not read again until the other side took every byte of
/// it, so a slow side holds the fast one back; the buffer goes back to the pool while a direction
/// waits for bytes; a FIN is passed on as a half-close and the relay ends when both directions
/// have; an error on either side, or <see cref="Abort"/> (idle timeout, duration, listener
/// drain), shuts both sockets down.
/// </summary>
internal sealed class EpollRelay
{
    /// <summary>The largest read: what a loopback or LAN receive returns at once anyway.</summary>
    public const int MaxReadBytes = 64 * 1024;

    private readonly EpollSocket _downstream;
    private readonly EpollSocket _upstream;
    private readonly TcpProxyStats _stats;
    private readonly StreamInfo _info;
    private readonly DeadlineTimer? _idle;
    private readonly TimeSpan _idleTimeout;
    private readonly Logger _log;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _running = 2;
    private int _aborted;

    /// <param name="early">Bytes read from the downstream before the upstream was connected (max_early_data_bytes): sent upstream first.</param>
    public EpollRelay(EpollSocket downstream, EpollSocket upstream, TcpProxyConfig config, StreamInfo info, DeadlineTimer? idle, Logger log, EarlyBytes early = default)
    {
        _downstream = downstream;
        _upstream = upstream;
        _stats = config.Stats;
        _info = info;
        _idle = idle;
        _idleTimeout = config.IdleTimeout;
        _log = log;
        var size = Math.Min(config.BufferBytes, MaxReadBytes);
        ToUpstream = new Direction(this, downstream, upstream, fromDownstream: true, size);
        ToDownstream = new Direction(this, upstream, downstream, fromDownstream: false, size);
        if (early.Buffer is not null || early.Ended)
        {
            ToUpstream.Prefill(early);
        }
    }

    private Direction ToUpstream { get; }

    private Direction ToDownstream { get; }

    private bool Aborted => Volatile.Read(ref _aborted) != 0;

    /// <summary>Relays until both directions ended, or <paramref name="closed"/> fires (then both sockets are shut down).</summary>
    public async Task RunAsync(CancellationToken closed)
    {
        using var registration = closed.UnsafeRegister(static s => ((EpollRelay)s!).Abort(), this);
        ToUpstream.Run();
        ToDownstream.Run();
        await _done.Task.ConfigureAwait(false);
    }

    /// <summary>Ends both directions: the sockets are shut down, waiting directions wake and stop.</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) == 0)
        {
            _downstream.Shutdown();
            _upstream.Shutdown();
        }
    }

    private void DirectionEnded()
    {
        if (Interlocked.Decrement(ref _running) == 0)
        {
            _done.TrySetResult();
        }
    }

    /// <summary>
    /// One direction. Only one continuation of it is ever pending (a read wait, a write wait or a
    /// queued work item), so its fields need no lock.
    /// </summary>
    private sealed class Direction : IThreadPoolWorkItem
    {
        /// <summary>Reads per wake-up before the loop thread is handed back (bulk transfers share it with other connections).</summary>
        private const int ReadsPerTurn = 16;

        private static readonly Action<object> s_resume = static state => ((Direction)state).Run();

        private readonly EpollRelay _relay;
        private readonly EpollSocket _from;
        private readonly EpollSocket _to;
        private readonly bool _fromDownstream;
        private readonly int _size;
        private byte[]? _buffer;
        private int _start;
        private int _end;
        private bool _paused;
        private int _bufferedAtPause;
        private bool _ended;
        private bool _prefilled;
        private bool _finAfterPrefill;

        public Direction(EpollRelay relay, EpollSocket from, EpollSocket to, bool fromDownstream, int size)
        {
            _relay = relay;
            _from = from;
            _to = to;
            _fromDownstream = fromDownstream;
            _size = size;
        }

        void IThreadPoolWorkItem.Execute() => Run();

        /// <summary>Starts with bytes already read (and maybe the peer's FIN after them); the buffer is the pool's.</summary>
        public void Prefill(EarlyBytes early)
        {
            _buffer = early.Buffer;
            _end = early.Buffer is null ? 0 : early.Count;
            _prefilled = early.Buffer is not null;
            _finAfterPrefill = early.Ended;
        }

        public void Run()
        {
            if (_ended)
            {
                return;
            }

            try
            {
                var reads = 0;
                while (true)
                {
                    if (_relay.Aborted)
                    {
                        End();
                        return;
                    }

                    if (_end > _start)
                    {
                        var sent = _to.TrySend(_buffer.AsSpan(_start, _end - _start));
                        if (sent < 0)
                        {
                            Pause();
                            if (_to.WaitWritable(s_resume, this))
                            {
                                return;
                            }

                            continue;
                        }

                        _start += sent;
                        if (_start < _end)
                        {
                            continue;
                        }

                        Delivered(_end);
                        _start = _end = 0;
                    }

                    if (_prefilled)
                    {
                        // The early buffer may be smaller than this direction's reads: a fresh one from here on.
                        _prefilled = false;
                        ReturnBuffer();
                    }

                    if (_finAfterPrefill)
                    {
                        // The client's FIN came with (or after) its early bytes.
                        _to.Socket.Shutdown(SocketShutdown.Send);
                        End();
                        return;
                    }

                    if (++reads > ReadsPerTurn)
                    {
                        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
                        return;
                    }

                    _buffer ??= ArrayPool<byte>.Shared.Rent(_size);
                    var read = _from.TryReceive(_buffer.AsSpan(0, _size));
                    if (read < 0)
                    {
                        // Nothing to read: an idle connection holds no buffer.
                        ReturnBuffer();
                        if (_from.WaitReadable(s_resume, this))
                        {
                            return;
                        }

                        continue;
                    }

                    if (read == 0)
                    {
                        // The peer's FIN, passed on as a half-close; the other direction goes on.
                        _to.Socket.Shutdown(SocketShutdown.Send);
                        End();
                        return;
                    }

                    _relay._idle?.Set(_relay._idleTimeout);
                    _end = read;
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                _relay._log.Debug($"tcp_proxy: {(_fromDownstream ? "downstream" : "upstream")} side ended: {ex.Message}");
                _relay.Abort();
                End();
            }
        }

        /// <summary>The other side did not take the bytes at once: reading this side waits (counted once per stall).</summary>
        private void Pause()
        {
            if (_paused)
            {
                return;
            }

            _paused = true;
            _bufferedAtPause = _end - _start;
            var stats = _relay._stats;
            (_fromDownstream ? stats.DownstreamCxRxBytesBuffered : stats.DownstreamCxTxBytesBuffered).Add(_bufferedAtPause);
            if (_fromDownstream)
            {
                stats.DownstreamFlowControlPausedReadingTotal.Inc();
            }
        }

        private void Delivered(int bytes)
        {
            var stats = _relay._stats;
            if (_paused)
            {
                _paused = false;
                (_fromDownstream ? stats.DownstreamCxRxBytesBuffered : stats.DownstreamCxTxBytesBuffered).Sub(_bufferedAtPause);
                if (_fromDownstream)
                {
                    stats.DownstreamFlowControlResumedReadingTotal.Inc();
                }
            }

            (_fromDownstream ? stats.DownstreamCxRxBytesTotal : stats.DownstreamCxTxBytesTotal).Add(bytes);
            if (_fromDownstream)
            {
                _relay._info.BytesReceived += bytes;
            }
            else
            {
                _relay._info.BytesSent += bytes;
            }
        }

        private void ReturnBuffer()
        {
            if (_buffer is { } buffer)
            {
                _buffer = null;
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        private void End()
        {
            if (_ended)
            {
                return;
            }

            _ended = true;
            if (_paused)
            {
                _paused = false;
                var stats = _relay._stats;
                (_fromDownstream ? stats.DownstreamCxRxBytesBuffered : stats.DownstreamCxTxBytesBuffered).Sub(_bufferedAtPause);
            }

            ReturnBuffer();
            _relay.DirectionEnded();
        }
    }
}
