using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Legate.Network.Epoll;

/// <summary>
/// One thread waiting in <c>epoll_wait</c> for the sockets registered with it (edge-triggered,
/// registered once for reads, writes and the peer's close) and running their completions inline,
/// as nginx's event loop does. It exists because .NET's own socket engine must try a receive before
/// it may wait for readiness: every read that finds nothing costs a system call that fails with
/// EAGAIN (two per proxied HTTP/1.1 request), and its completions go through several generic
/// layers. Here a socket that was drained (a short read) waits for the next edge without trying.
/// Under load a loop whose last batch was small pauses briefly before it waits again, so that
/// events gather (<see cref="EventCoalescing"/>).
/// </summary>
internal sealed unsafe class EpollLoop
{
    private const int MaxEvents = 256;

    private static readonly Lazy<EpollLoop[]?> s_loops = new(CreateLoops);
    private static int s_next;

    private readonly int _epfd;
    private readonly Lock _lock = new();
    // Read without the lock by the loop, once per event; the array is swapped (never resized in
    // place) when it grows. A socket carries the generation it was registered with, so an event
    // left over from a slot's previous socket is recognised on the socket itself: one object to
    // reach per event, the one the event is for.
    private EpollSocket?[] _sockets = new EpollSocket?[64];
    private int[] _generations = new int[64];
    private readonly Stack<int> _free = new();
    private int _used;

    private readonly int _pauseMicroseconds;

    private EpollLoop(int epfd, int index, int pauseMicroseconds)
    {
        _epfd = epfd;
        _pauseMicroseconds = pauseMicroseconds;
        var thread = new Thread(Run)
        {
            IsBackground = true,
            Name = $"Legate epoll {index}",
        };
        thread.UnsafeStart();
    }

    /// <summary>
    /// Whether the engine runs: Linux only, and <c>LEGATE_SOCKET_ENGINE=dotnet</c> turns it off
    /// (back to Kestrel's socket transport over .NET's engine).
    /// </summary>
    public static bool IsEnabled => s_enabled.Value;

    private static readonly Lazy<bool> s_enabled = new(static () =>
        !string.Equals(Environment.GetEnvironmentVariable("LEGATE_SOCKET_ENGINE"), "dotnet", StringComparison.OrdinalIgnoreCase)
        && s_loops.Value is not null);

    /// <summary>
    /// The next loop, round robin (connections spread over one loop per core). The loops start on
    /// first use, so a process on .NET's engine (<see cref="IsEnabled"/> false) has none.
    /// </summary>
    public static EpollLoop Next()
    {
        var loops = s_loops.Value ?? throw new PlatformNotSupportedException("the epoll socket engine is not available");
        var index = (uint)Interlocked.Increment(ref s_next) % (uint)loops.Length;
        return loops[index];
    }

    private static EpollLoop[]? CreateLoops()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var pause = EventCoalescing.ParsePause(Environment.GetEnvironmentVariable(EventCoalescing.PauseVariable), out var error);
        if (error is not null)
        {
            Console.Error.WriteLine($"legate: warning: {error}");
        }

        var count = Math.Max(1, Environment.ProcessorCount);
        var loops = new EpollLoop[count];
        for (var i = 0; i < count; i++)
        {
            var epfd = EpollNative.EpollCreate1(EpollNative.EPOLL_CLOEXEC);
            if (epfd < 0)
            {
                return null;
            }

            loops[i] = new EpollLoop(epfd, i, pause);
        }

        return loops;
    }

    /// <summary>Adds the socket's descriptor to this loop (edge-triggered: in, out, peer close).</summary>
    public void Register(EpollSocket socket)
    {
        int slot;
        int generation;
        lock (_lock)
        {
            if (!_free.TryPop(out slot))
            {
                if (_used == _generations.Length)
                {
                    var grown = _sockets;
                    Array.Resize(ref grown, grown.Length * 2);
                    Volatile.Write(ref _sockets, grown);
                    Array.Resize(ref _generations, _generations.Length * 2);
                }

                slot = _used++;
            }

            generation = ++_generations[slot];
            socket.Slot = slot;
            socket.Generation = generation;
            Volatile.Write(ref _sockets[slot], socket);
        }

        var ev = stackalloc byte[16];
        EpollNative.WriteEvent(ev, EpollNative.EPOLLIN | EpollNative.EPOLLOUT | EpollNative.EPOLLRDHUP | EpollNative.EPOLLET, ((ulong)(uint)generation << 32) | (uint)slot);
        if (EpollNative.EpollCtl(_epfd, EpollNative.EPOLL_CTL_ADD, socket.Fd, ev) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            Release(slot);
            throw new System.Net.Sockets.SocketException(errno);
        }
    }

    /// <summary>Removes the descriptor (before it is closed, so a reused number never sees stale events).</summary>
    public void Unregister(EpollSocket socket)
    {
        var ev = stackalloc byte[16];
        EpollNative.WriteEvent(ev, 0, 0);
        _ = EpollNative.EpollCtl(_epfd, EpollNative.EPOLL_CTL_DEL, socket.Fd, ev);
        Release(socket.Slot);
    }

    private void Release(int slot)
    {
        lock (_lock)
        {
            Volatile.Write(ref _sockets[slot], null);
            _generations[slot]++;
            _free.Push(slot);
        }
    }

    private void Run()
    {
        var buffer = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * EpollNative.EventSize));
        var clock = EventClock.EnterEventThread();
        DataPathContext.Enter();
        var coalescing = new EventCoalescing(_pauseMicroseconds);
        var pause = stackalloc nint[2];
        pause[0] = 0;
        pause[1] = coalescing.PauseMicroseconds * 1000;
        if (coalescing.PauseMicroseconds > 0)
        {
            // The default slack (50 µs) would stretch a 10 µs pause sixfold.
            _ = EpollNative.Prctl(EpollNative.PR_SET_TIMERSLACK, 1, 0, 0, 0);
        }

        var last = 0;
        var mark = Stopwatch.GetTimestamp();
        while (true)
        {
            if (coalescing.ShouldPause(last))
            {
                _ = EpollNative.Nanosleep(pause, null);
            }

            var n = EpollNative.EpollWait(_epfd, buffer, MaxEvents, -1);
            if (n < 0)
            {
                if (Marshal.GetLastPInvokeError() == EpollNative.EINTR)
                {
                    continue;
                }

                return;
            }

            var start = Stopwatch.GetTimestamp();
            Dispatch(buffer, n, clock);
            var end = Stopwatch.GetTimestamp();
            coalescing.Record(start - mark, end - start);
            mark = end;
            last = n;
        }
    }

    /// <summary>
    /// Runs the completions of one batch of events. Its own method so that it is compiled (and
    /// profile-guided) as a normal method: the loop in <see cref="Run"/> never returns, so its
    /// body would only ever run as on-stack-replacement code.
    /// </summary>
    private void Dispatch(byte* buffer, int n, EventClock.Cache clock)
    {
        var size = EpollNative.EventSize;
        var offset = EpollNative.EventDataOffset;
        for (var i = 0; i < n; i++)
        {
            var ev = buffer + (i * size);
            var events = *(uint*)ev;
            var data = *(ulong*)(ev + offset);
            var slot = (int)(uint)data;
            var generation = (int)(data >> 32);
            var sockets = Volatile.Read(ref _sockets);
            var socket = (uint)slot < (uint)sockets.Length ? Volatile.Read(ref sockets[slot]) : null;
            if (socket is null || socket.Generation != generation)
            {
                continue;
            }

            try
            {
                clock.NextEvent();
                socket.OnEvents(events);
            }
            catch (Exception ex)
            {
                // A completion threw (a bug): nothing above the loop can catch it, and the
                // other connections on this loop must go on being served.
                Console.Error.WriteLine($"legate: an epoll completion threw: {ex}");
            }
        }
    }
}
