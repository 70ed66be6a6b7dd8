using System.Runtime.InteropServices;

namespace Legate.Network.Epoll;

/// <summary>The few Linux calls the epoll socket engine needs (libc, no wrapper library).</summary>
internal static unsafe partial class EpollNative
{
    public const int EPOLLIN = 0x001;
    public const int EPOLLOUT = 0x004;
    public const int EPOLLERR = 0x008;
    public const int EPOLLHUP = 0x010;
    public const int EPOLLRDHUP = 0x2000;
    public const uint EPOLLET = 1u << 31;

    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const int EPOLL_CLOEXEC = 0x80000;

    public const int EAGAIN = 11;
    public const int EINTR = 4;

    public const int MSG_NOSIGNAL = 0x4000;

    public const int EFD_CLOEXEC = 0x80000;
    public const int EFD_NONBLOCK = 0x800;

    /// <summary>
    /// <c>struct epoll_event</c> is packed on x86-64 (data at offset 4, 12 bytes) and naturally
    /// aligned elsewhere (data at offset 8, 16 bytes).
    /// </summary>
    public static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    public static readonly int EventDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int EpollCtl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int EpollWait(int epfd, byte* events, int maxEvents, int timeout);

    // recv and send on the engine's non-blocking sockets never wait, so they run without the GC
    // transition (four per proxied request). Without it nothing runs between the call and the
    // caller's Marshal.GetLastSystemError, so errno is read there, and only when the call failed.
    [LibraryImport("libc", EntryPoint = "recv")]
    [SuppressGCTransition]
    public static partial nint Recv(int fd, byte* buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "send")]
    [SuppressGCTransition]
    public static partial nint Send(int fd, byte* buffer, nint length, int flags);

    /// <summary>prctl's PR_SET_TIMERSLACK: how late the kernel may wake the calling thread from a timed sleep.</summary>
    public const int PR_SET_TIMERSLACK = 29;

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    public static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    /// <summary>nanosleep with <paramref name="request"/> pointing at a <c>struct timespec</c> (two native-sized integers).</summary>
    [LibraryImport("libc", EntryPoint = "nanosleep", SetLastError = true)]
    public static partial int Nanosleep(nint* request, nint* remaining);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initval, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nint length);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nint length);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    /// <summary>Fills an epoll_event for <see cref="EpollCtl"/>.</summary>
    public static void WriteEvent(byte* ev, uint events, ulong data)
    {
        *(uint*)ev = events;
        *(ulong*)(ev + EventDataOffset) = data;
    }
}
