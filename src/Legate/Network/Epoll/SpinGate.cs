using System.Runtime.CompilerServices;

namespace Legate.Network.Epoll;

/// <summary>
/// The mutual exclusion of the epoll engine's per-socket objects (<see cref="EpollSocket"/>,
/// <see cref="EpollPipeReader"/>, <see cref="EpollPipeWriter"/>): an <see cref="int"/> field of the
/// object itself, taken with one compare-and-swap and released with a plain store. Nearly every
/// hold is on the loop thread without contention, about twenty per proxied request, and
/// <see cref="Lock"/> cost more there: a second object to reach (a cache miss per socket per
/// event), the owner's thread id from thread-local storage, an atomic on both enter and exit.
/// Not reentrant: nothing called while a gate is held may take the same gate, which is why
/// callbacks (continuations, cancellation) run after the gate is released or are queued.
/// </summary>
internal static class SpinGate
{
    /// <summary>Takes the gate in <paramref name="state"/>; dispose the result to release it (<c>using</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Held Hold(ref int state)
    {
        if (Interlocked.CompareExchange(ref state, 1, 0) != 0)
        {
            Contend(ref state);
        }

        return new Held(ref state);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Contend(ref int state)
    {
        // Another thread holds it (an HTTP/2 or timer thread against the loop): holds are a few
        // instructions long, and SpinWait yields the core to the holder when spinning is useless
        // (one core, or the holder descheduled).
        var spinner = default(SpinWait);
        do
        {
            spinner.SpinOnce();
        }
        while (Interlocked.CompareExchange(ref state, 1, 0) != 0);
    }

    public readonly ref struct Held
    {
        private readonly ref int _state;

        internal Held(ref int state)
        {
            _state = ref state;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Dispose() => Volatile.Write(ref _state, 0);
    }
}
