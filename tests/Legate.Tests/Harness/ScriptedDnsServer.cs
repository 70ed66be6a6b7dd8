using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Legate.Tests.Harness;

/// <summary>
/// A DNS server on 127.0.0.1 (UDP, and TCP on the same port) answering A and AAAA questions from
/// a table the test sets: addresses with TTLs, NXDOMAIN for unknown names, or, per name, SERVFAIL,
/// silence, or a truncated UDP answer (the full one over TCP). Counts every question it gets.
/// </summary>
internal sealed class ScriptedDnsServer : IAsyncDisposable
{
    private readonly Socket _udp;
    private readonly TcpListener _tcp;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _names = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<(string Name, ushort Type, bool Tcp)> _queries = [];
    private readonly Task _udpLoop;
    private readonly Task _tcpLoop;
    private TaskCompletionSource _queried = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public enum Behaviour
    {
        Answer,
        ServerFailure,
        Silent,
        TruncateOverUdp,
    }

    private sealed record Entry((IPAddress Address, uint Ttl)[] Records, Behaviour Behaviour);

    private ScriptedDnsServer()
    {
        _udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        Port = ((IPEndPoint)_udp.LocalEndPoint!).Port;
        // TCP on the same port, for answers that did not fit a datagram. Another process may hold
        // it; then the caller tries again with a new server.
        _tcp = new TcpListener(IPAddress.Loopback, Port);
        _tcp.Start();
        _udpLoop = ServeUdpAsync();
        _tcpLoop = ServeTcpAsync();
    }

    public int Port { get; }

    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);

    public static ScriptedDnsServer Start()
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return new ScriptedDnsServer();
            }
            catch (SocketException) when (attempt < 20)
            {
                // The UDP port's TCP twin was taken: pick another port.
            }
        }
    }

    /// <summary>Answers <paramref name="name"/> with these addresses and TTLs (seconds), the way <paramref name="behaviour"/> says.</summary>
    public void Set(string name, Behaviour behaviour, params (string Address, uint Ttl)[] records)
    {
        lock (_lock)
        {
            _names[name] = new Entry(records.Select(r => (IPAddress.Parse(r.Address), r.Ttl)).ToArray(), behaviour);
        }
    }

    public void Set(string name, params (string Address, uint Ttl)[] records) => Set(name, Behaviour.Answer, records);

    public int Queries(string name, bool? tcp = null)
    {
        lock (_lock)
        {
            return _queries.Count(q => string.Equals(q.Name, name, StringComparison.OrdinalIgnoreCase) && (tcp is null || q.Tcp == tcp));
        }
    }

    public IReadOnlyList<string> QueriedNames
    {
        get
        {
            lock (_lock)
            {
                return _queries.Select(q => q.Name).ToArray();
            }
        }
    }

    /// <summary>Waits (up to 30 s) until <paramref name="name"/> was asked at least <paramref name="count"/> times.</summary>
    public async Task WaitForQueriesAsync(string name, int count)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            Task next;
            lock (_lock)
            {
                if (_queries.Count(q => string.Equals(q.Name, name, StringComparison.OrdinalIgnoreCase)) >= count)
                {
                    return;
                }

                next = _queried.Task;
            }

            await next.WaitAsync(timeout.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _udp.Dispose();
        _tcp.Stop();
        try
        {
            await Task.WhenAll(_udpLoop, _tcpLoop);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task ServeUdpAsync()
    {
        var buffer = new byte[512];
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await _udp.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            var answer = Answer(buffer.AsSpan(0, received.ReceivedBytes).ToArray(), tcp: false);
            if (answer is not null)
            {
                await _udp.SendToAsync(answer, SocketFlags.None, received.RemoteEndPoint);
            }
        }
    }

    private async Task ServeTcpAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _tcp.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(async () =>
            {
                using (client)
                {
                    var stream = client.GetStream();
                    var length = new byte[2];
                    await stream.ReadExactlyAsync(length);
                    var query = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
                    await stream.ReadExactlyAsync(query);
                    if (Answer(query, tcp: true) is { } answer)
                    {
                        var framed = new byte[answer.Length + 2];
                        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)answer.Length);
                        answer.CopyTo(framed, 2);
                        await stream.WriteAsync(framed);
                    }
                }
            });
        }
    }

    private byte[]? Answer(byte[] query, bool tcp)
    {
        // The question: one name (plain labels, as stub resolvers send), type, class.
        var offset = 12;
        var labels = new List<string>();
        while (query[offset] != 0)
        {
            labels.Add(Encoding.ASCII.GetString(query, offset + 1, query[offset]));
            offset += 1 + query[offset];
        }

        var questionEnd = offset + 5;
        var name = string.Join('.', labels);
        var type = BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(offset + 1));
        Entry? entry;
        lock (_lock)
        {
            _queries.Add((name, type, tcp));
            _names.TryGetValue(name, out entry);
            _queried.TrySetResult();
            _queried = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        var behaviour = entry?.Behaviour ?? Behaviour.Answer;
        if (behaviour == Behaviour.Silent)
        {
            return null;
        }

        var records = entry is null ? [] : entry.Records.Where(r => r.Address.AddressFamily == (type == 28 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork)).ToArray();
        var truncate = behaviour == Behaviour.TruncateOverUdp && !tcp;
        var message = new List<byte>();
        message.AddRange(query.AsSpan(0, 2).ToArray()); // id
        var rcode = entry is null ? 3 : behaviour == Behaviour.ServerFailure ? 2 : 0;
        message.Add((byte)(0x80 | 0x01 | (truncate ? 0x02 : 0))); // QR, RD (echoed), TC
        message.Add((byte)(0x80 | rcode)); // RA, RCODE
        message.AddRange([0, 1]); // QDCOUNT
        var count = truncate || rcode != 0 ? 0 : records.Length;
        message.AddRange([(byte)(count >> 8), (byte)count, 0, 0, 0, 0]);
        message.AddRange(query.AsSpan(12, questionEnd - 12).ToArray());
        for (var i = 0; i < count; i++)
        {
            var bytes = records[i].Address.GetAddressBytes();
            message.AddRange([0xC0, 12]); // the question's name
            message.AddRange([(byte)(type >> 8), (byte)type, 0, 1]);
            var ttl = records[i].Ttl;
            message.AddRange([(byte)(ttl >> 24), (byte)(ttl >> 16), (byte)(ttl >> 8), (byte)ttl]);
            message.AddRange([0, (byte)bytes.Length]);
            message.AddRange(bytes);
        }

        return [.. message];
    }
}
