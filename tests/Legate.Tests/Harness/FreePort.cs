using System.Net;
using System.Net.Sockets;

namespace Legate.Tests.Harness;

/// <summary>
/// Ports for tests. Prefer <c>port_value: 0</c> and reading the bound port back (the harness does);
/// use these only when a test must know a port before Legate starts.
/// </summary>
internal static class FreePort
{
    /// <summary>A port that was free a moment ago: the kernel picked it for a socket we then closed.</summary>
    public static int Get()
    {
        using var listener = Occupy();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A listening socket on 127.0.0.1 and a kernel-chosen port, held until disposed (to test "address in use").</summary>
    public static OccupiedPort Occupy()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return new OccupiedPort(listener);
    }

    /// <summary>
    /// A port that refuses connections for as long as the result lives: bound on 127.0.0.1 but not
    /// listening, so the kernel answers RST and no other test's server can take the port meanwhile
    /// (a port from <see cref="Get"/> can be reused by a parallel test, which then answers).
    /// </summary>
    public static RefusingPort Refusing()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return new RefusingPort(socket);
    }

    internal sealed class RefusingPort(Socket socket) : IDisposable
    {
        public int Port => ((IPEndPoint)socket.LocalEndPoint!).Port;

        public void Dispose() => socket.Dispose();
    }

    internal sealed class OccupiedPort(TcpListener listener) : IDisposable
    {
        public EndPoint LocalEndpoint => listener.LocalEndpoint;

        public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

        public void Dispose() => listener.Stop();
    }
}
