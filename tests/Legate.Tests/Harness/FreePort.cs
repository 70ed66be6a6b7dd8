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

    internal sealed class OccupiedPort(TcpListener listener) : IDisposable
    {
        public EndPoint LocalEndpoint => listener.LocalEndpoint;

        public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

        public void Dispose() => listener.Stop();
    }
}
