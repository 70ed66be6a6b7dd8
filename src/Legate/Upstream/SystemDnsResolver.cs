using System.Net;
using System.Net.Sockets;

namespace Legate.Upstream;

/// <summary>
/// The operating system's resolver (getaddrinfo through System.Net.Dns), like Envoy's
/// getaddrinfo resolver: the default. It reports no TTLs, so <c>respect_dns_ttl</c> uses <see cref="DnsClient"/> instead.
/// </summary>
internal sealed class SystemDnsResolver : IDnsResolver
{
    public static readonly SystemDnsResolver Instance = new();

    private SystemDnsResolver()
    {
    }

    /// <summary>Envoy's getaddrinfo resolver reports this fixed TTL, getaddrinfo giving none.</summary>
    public static readonly TimeSpan DefaultTtl = TimeSpan.FromSeconds(60);

    /// <summary>With <see cref="DefaultTtl"/> for every address, as Envoy's getaddrinfo resolver (chosen with typed_dns_resolver_config).</summary>
    public async Task<IReadOnlyList<DnsRecord>> ResolveRecordsAsync(string hostName, AddressFamily family, CancellationToken cancellationToken)
    {
        var addresses = await ResolveAsync(hostName, family, cancellationToken).ConfigureAwait(false);
        var records = new DnsRecord[addresses.Count];
        for (var i = 0; i < records.Length; i++)
        {
            records[i] = new DnsRecord(addresses[i], DefaultTtl);
        }

        return records;
    }

    public async Task<IReadOnlyList<IPAddress>> ResolveAsync(string hostName, AddressFamily family, CancellationToken cancellationToken)
    {
        try
        {
            return await Dns.GetHostAddressesAsync(hostName, family, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.HostNotFound or SocketError.NoData)
        {
            // EAI_NONAME / EAI_NODATA: an answer with no addresses, not a failure (as Envoy).
            return [];
        }
    }
}
