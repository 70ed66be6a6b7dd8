using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Legate.Network;

/// <summary>
/// A Multipath TCP socket (Linux, IPPROTO_MPTCP): .NET refuses the protocol number, so the socket is
/// made with libc's <c>socket()</c> and handed to <see cref="Socket"/>. Clients that speak MPTCP get
/// MPTCP connections; the others fall back to plain TCP on the same socket.
/// </summary>
internal static partial class MptcpSocket
{
    private const int IPPROTO_MPTCP = 262;
    private const int SOCK_STREAM = 1;
    private const int SOCK_CLOEXEC = 0x80000;
    private const int AF_INET = 2;
    private const int AF_INET6 = 10;

    /// <exception cref="PlatformNotSupportedException">Not Linux, or a kernel without MPTCP (or with it off: net.mptcp.enabled = 0).</exception>
    public static Socket Create(AddressFamily family)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("MPTCP is not supported by the operating system");
        }

        var fd = Native(family == AddressFamily.InterNetworkV6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_MPTCP);
        if (fd < 0)
        {
            var error = new SocketException(Marshal.GetLastPInvokeError());
            throw new PlatformNotSupportedException($"MPTCP is not supported by the operating system ({error.Message})", error);
        }

        return new Socket(new SafeSocketHandle(fd, ownsHandle: true));
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int Native(int domain, int type, int protocol);
}
