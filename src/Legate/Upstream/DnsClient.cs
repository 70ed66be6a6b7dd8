using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Legate.Upstream;

/// <summary>
/// A small stub resolver of Legate's own, for what getaddrinfo cannot give: the TTL of each address
/// (<c>respect_dns_ttl</c>) and name servers of the cluster's choosing (<c>dns_resolvers</c>). It
/// asks the name servers in order over UDP for A and/or AAAA records, each with its own timeout,
/// retries over TCP when an answer comes back truncated, and applies resolv.conf's <c>search</c>
/// list and <c>ndots</c> as the system resolver does. NXDOMAIN and an answer without addresses are
/// an empty answer (as <see cref="SystemDnsResolver"/>); no server answering, or only with errors
/// (SERVFAIL, REFUSED…), is a failure, which the cluster retries at <c>dns_failure_refresh_rate</c>.
/// </summary>
internal sealed class DnsClient : IDnsResolver
{
    /// <summary>c-ares' default per-try timeout.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    private const ushort TypeA = 1;
    private const ushort TypeAaaa = 28;
    private const ushort TypeCname = 5;
    private const int MaxUdpAnswer = 4096;

    private static readonly Lazy<DnsClient> s_system = new(() => FromResolvConf("/etc/resolv.conf"));

    private readonly IPEndPoint[] _servers;
    private readonly string[] _search;
    private readonly int _ndots;
    private readonly TimeSpan _timeout;

    public DnsClient(IReadOnlyList<IPEndPoint> servers, IReadOnlyList<string>? search = null, int ndots = 1, TimeSpan? timeout = null)
    {
        _servers = servers.Count > 0 ? [.. servers] : [new IPEndPoint(IPAddress.Loopback, 53)];
        _search = search is null ? [] : [.. search];
        _ndots = ndots;
        _timeout = timeout ?? DefaultTimeout;
    }

    /// <summary>The name servers, search list and options of /etc/resolv.conf (read once).</summary>
    public static DnsClient System => s_system.Value;

    public IReadOnlyList<IPEndPoint> Servers => _servers;

    /// <summary>Parses resolv.conf: <c>nameserver</c>, <c>search</c> / <c>domain</c>, <c>options ndots:N timeout:N</c>.</summary>
    public static DnsClient FromResolvConf(string path)
    {
        var servers = new List<IPEndPoint>();
        var search = new List<string>();
        var ndots = 1;
        var timeout = DefaultTimeout;
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (IOException)
        {
            lines = [];
        }
        catch (UnauthorizedAccessException)
        {
            lines = [];
        }

        foreach (var raw in lines)
        {
            var fields = raw.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2 || fields[0].StartsWith('#') || fields[0].StartsWith(';'))
            {
                continue;
            }

            switch (fields[0])
            {
                case "nameserver":
                    // A link-local IPv6 server may carry its scope (fe80::1%eth0); IPAddress parses it.
                    if (IPAddress.TryParse(fields[1], out var address))
                    {
                        servers.Add(new IPEndPoint(address, 53));
                    }

                    break;
                case "search":
                case "domain":
                    // The last of search/domain wins, as in resolv.conf(5).
                    search.Clear();
                    search.AddRange(fields.Skip(1).Select(d => d.TrimEnd('.')).Where(d => d.Length > 0));
                    break;
                case "options":
                    foreach (var option in fields.Skip(1))
                    {
                        if (option.StartsWith("ndots:", StringComparison.Ordinal) && int.TryParse(option.AsSpan(6), out var n))
                        {
                            ndots = Math.Clamp(n, 0, 15);
                        }
                        else if (option.StartsWith("timeout:", StringComparison.Ordinal) && int.TryParse(option.AsSpan(8), out var t) && t > 0)
                        {
                            timeout = TimeSpan.FromSeconds(Math.Min(t, 30));
                        }
                    }

                    break;
            }
        }

        return new DnsClient(servers, search, ndots, timeout);
    }

    public async Task<IReadOnlyList<IPAddress>> ResolveAsync(string hostName, AddressFamily family, CancellationToken cancellationToken)
    {
        var records = await ResolveRecordsAsync(hostName, family, cancellationToken).ConfigureAwait(false);
        var addresses = new IPAddress[records.Count];
        for (var i = 0; i < addresses.Length; i++)
        {
            addresses[i] = records[i].Address;
        }

        return addresses;
    }

    public async Task<IReadOnlyList<DnsRecord>> ResolveRecordsAsync(string hostName, AddressFamily family, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(hostName, out var literal))
        {
            return [new DnsRecord(literal, TimeSpan.Zero)];
        }

        foreach (var candidate in Candidates(hostName))
        {
            var records = await QueryFamiliesAsync(candidate, family, cancellationToken).ConfigureAwait(false);
            if (records.Count > 0)
            {
                return records;
            }
        }

        return [];
    }

    /// <summary>The names to try, in order: resolv.conf's search list before or after the name itself by ndots.</summary>
    private IEnumerable<string> Candidates(string hostName)
    {
        if (hostName.EndsWith('.'))
        {
            yield return hostName.TrimEnd('.');
            yield break;
        }

        var dots = hostName.Count(c => c == '.');
        if (dots >= _ndots || _search.Length == 0)
        {
            yield return hostName;
        }

        foreach (var domain in _search)
        {
            yield return hostName + "." + domain;
        }

        if (dots < _ndots && _search.Length > 0)
        {
            yield return hostName;
        }
    }

    private async Task<IReadOnlyList<DnsRecord>> QueryFamiliesAsync(string name, AddressFamily family, CancellationToken cancellationToken)
    {
        if (family == AddressFamily.InterNetwork)
        {
            return await QueryAsync(name, TypeA, cancellationToken).ConfigureAwait(false);
        }

        if (family == AddressFamily.InterNetworkV6)
        {
            return await QueryAsync(name, TypeAaaa, cancellationToken).ConfigureAwait(false);
        }

        // Both families at once; the cluster applies dns_lookup_family to the union. One family
        // failing while the other answers is still an answer.
        var v6 = QueryAsync(name, TypeAaaa, cancellationToken);
        var v4 = QueryAsync(name, TypeA, cancellationToken);
        DnsResolutionException? failure = null;
        var failures = 0;
        var records = new List<DnsRecord>();
        foreach (var query in new[] { v6, v4 })
        {
            try
            {
                records.AddRange(await query.ConfigureAwait(false));
            }
            catch (DnsResolutionException e)
            {
                failure = e;
                failures++;
            }
        }

        if (failures == 2)
        {
            throw failure!;
        }

        return records;
    }

    /// <summary>One question to each server in turn until one answers it (an answer or NXDOMAIN).</summary>
    private async Task<IReadOnlyList<DnsRecord>> QueryAsync(string name, ushort type, CancellationToken cancellationToken)
    {
        var query = BuildQuery(name, type, out var id);
        string? lastError = null;
        foreach (var server in _servers)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_timeout);
            try
            {
                var answer = await ExchangeUdpAsync(server, query, id, timeout.Token).ConfigureAwait(false);
                if ((answer[2] & 0x02) != 0)
                {
                    // TC: the answer did not fit a datagram; ask again over TCP.
                    answer = await ExchangeTcpAsync(server, query, id, timeout.Token).ConfigureAwait(false);
                }

                var rcode = answer[3] & 0x0F;
                if (rcode == 3)
                {
                    return [];
                }

                if (rcode != 0)
                {
                    lastError = $"{server}: rcode {rcode}";
                    continue;
                }

                return ParseAnswers(answer, type);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                lastError = $"{server}: no answer within {_timeout.TotalSeconds:0.###} s";
            }
            catch (Exception e) when (e is SocketException or IOException or FormatException)
            {
                lastError = $"{server}: {e.Message}";
            }
        }

        throw new DnsResolutionException($"DNS query for {name} ({(type == TypeA ? "A" : "AAAA")}) failed: {lastError}");
    }

    private static async Task<byte[]> ExchangeUdpAsync(IPEndPoint server, byte[] query, ushort id, CancellationToken cancellationToken)
    {
        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        // Connected: datagrams from anyone but the server are dropped by the kernel.
        await socket.ConnectAsync(server, cancellationToken).ConfigureAwait(false);
        await socket.SendAsync(query, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        var buffer = new byte[MaxUdpAnswer];
        while (true)
        {
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            // Another id (a late answer to an earlier query, a spoof) is not ours: keep waiting.
            if (read >= 12 && BinaryPrimitives.ReadUInt16BigEndian(buffer) == id && (buffer[2] & 0x80) != 0)
            {
                return buffer.AsSpan(0, read).ToArray();
            }
        }
    }

    private static async Task<byte[]> ExchangeTcpAsync(IPEndPoint server, byte[] query, ushort id, CancellationToken cancellationToken)
    {
        using var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server, cancellationToken).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var framed = new byte[query.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
        query.CopyTo(framed, 2);
        await stream.WriteAsync(framed, cancellationToken).ConfigureAwait(false);
        var length = new byte[2];
        await stream.ReadExactlyAsync(length, cancellationToken).ConfigureAwait(false);
        var answer = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
        await stream.ReadExactlyAsync(answer, cancellationToken).ConfigureAwait(false);
        if (answer.Length < 12 || BinaryPrimitives.ReadUInt16BigEndian(answer) != id)
        {
            throw new FormatException("the TCP answer does not match the query");
        }

        return answer;
    }

    private static byte[] BuildQuery(string name, ushort type, out ushort id)
    {
        id = (ushort)Random.Shared.Next(ushort.MaxValue + 1);
        var message = new List<byte>(12 + name.Length + 6);
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(header, id);
        header[2] = 0x01; // RD: the server recurses for us.
        header[5] = 1; // QDCOUNT
        message.AddRange(header.ToArray());
        foreach (var label in name.Split('.'))
        {
            var bytes = Encoding.ASCII.GetBytes(label);
            if (bytes.Length is 0 or > 63 || label.Any(c => c > 127))
            {
                throw new DnsResolutionException($"'{name}' is not a valid DNS name");
            }

            message.Add((byte)bytes.Length);
            message.AddRange(bytes);
        }

        message.Add(0);
        message.Add((byte)(type >> 8));
        message.Add((byte)type);
        message.Add(0);
        message.Add(1); // IN
        return [.. message];
    }

    /// <summary>The addresses of <paramref name="type"/> in the answer section (after any CNAMEs), with their TTLs.</summary>
    private static List<DnsRecord> ParseAnswers(byte[] message, ushort type)
    {
        var questions = BinaryPrimitives.ReadUInt16BigEndian(message.AsSpan(4));
        var answers = BinaryPrimitives.ReadUInt16BigEndian(message.AsSpan(6));
        var offset = 12;
        for (var i = 0; i < questions; i++)
        {
            offset = SkipName(message, offset) + 4;
        }

        var records = new List<DnsRecord>(answers);
        for (var i = 0; i < answers; i++)
        {
            offset = SkipName(message, offset);
            if (offset + 10 > message.Length)
            {
                throw new FormatException("truncated DNS record");
            }

            var recordType = BinaryPrimitives.ReadUInt16BigEndian(message.AsSpan(offset));
            var ttl = BinaryPrimitives.ReadUInt32BigEndian(message.AsSpan(offset + 4));
            var length = BinaryPrimitives.ReadUInt16BigEndian(message.AsSpan(offset + 8));
            offset += 10;
            if (offset + length > message.Length)
            {
                throw new FormatException("truncated DNS record data");
            }

            if (recordType == type && recordType != TypeCname && length == (type == TypeA ? 4 : 16))
            {
                // RFC 2181 §8: a TTL with the top bit set is 0.
                var seconds = ttl > int.MaxValue ? 0 : ttl;
                records.Add(new DnsRecord(new IPAddress(message.AsSpan(offset, length)), TimeSpan.FromSeconds(seconds)));
            }

            offset += length;
        }

        return records;
    }

    private static int SkipName(byte[] message, int offset)
    {
        while (true)
        {
            if (offset >= message.Length)
            {
                throw new FormatException("truncated DNS name");
            }

            var length = message[offset];
            if ((length & 0xC0) == 0xC0)
            {
                return offset + 2; // a compression pointer ends the name
            }

            if (length == 0)
            {
                return offset + 1;
            }

            offset += 1 + length;
        }
    }
}
