using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Legate.Tests.Http.Http2;

/// <summary>
/// A TCP relay in front of an HTTP/2 server that reads the frames its clients send (after the
/// connection preface) and counts the PINGs that are not ACKs: proof that a client sends keepalive
/// PINGs, which a Kestrel server answers without telling anyone. Bytes pass unchanged both ways.
/// </summary>
internal sealed class Http2PingRelay : IAsyncDisposable
{
    private const int PrefaceLength = 24;
    private const byte PingType = 0x6;
    private const byte AckFlag = 0x1;

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = new();
    private int _pings;

    private Http2PingRelay(IPEndPoint target)
    {
        _target = target;
        _listener.Start();
        _tasks.Add(AcceptAsync());
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>PING frames (not ACKs) the clients sent.</summary>
    public int Pings => Volatile.Read(ref _pings);

    public static Http2PingRelay Start(int targetPort) => new(new IPEndPoint(IPAddress.Loopback, targetPort));

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        try
        {
            Task[] tasks;
            lock (_tasks)
            {
                tasks = _tasks.ToArray();
            }

            await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception)
        {
            // Relays end with their sockets: errors on the way out do not matter.
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            lock (_tasks)
            {
                _tasks.Add(RelayAsync(client));
            }
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using var _ = client;
        using var server = new TcpClient();
        try
        {
            await server.ConnectAsync(_target, _stop.Token);
            var fromClient = client.GetStream();
            var toServer = server.GetStream();
            var back = server.GetStream().CopyToAsync(client.GetStream(), _stop.Token);
            var forth = ForwardFramesAsync(fromClient, toServer);
            await Task.WhenAny(back, forth);
        }
        catch (Exception)
        {
            // A closed side ends the relay.
        }
    }

    private async Task ForwardFramesAsync(Stream from, Stream to)
    {
        var preface = new byte[PrefaceLength];
        await from.ReadExactlyAsync(preface, _stop.Token);
        await to.WriteAsync(preface, _stop.Token);
        var header = new byte[9];
        while (true)
        {
            await from.ReadExactlyAsync(header, _stop.Token);
            var length = (header[0] << 16) | (header[1] << 8) | header[2];
            var payload = new byte[length];
            await from.ReadExactlyAsync(payload, _stop.Token);
            if (header[3] == PingType && (header[4] & AckFlag) == 0 && BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(5)) == 0)
            {
                Interlocked.Increment(ref _pings);
            }

            await to.WriteAsync(header, _stop.Token);
            await to.WriteAsync(payload, _stop.Token);
        }
    }
}
