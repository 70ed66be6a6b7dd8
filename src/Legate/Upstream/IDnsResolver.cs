using System.Net;
using System.Net.Sockets;

namespace Legate.Upstream;

/// <summary>Resolves host names for STRICT_DNS and LOGICAL_DNS clusters.</summary>
internal interface IDnsResolver
{
    /// <summary>
    /// The addresses of <paramref name="hostName"/>, in the resolver's order. An empty list means
    /// the name has no addresses (NXDOMAIN, NODATA): Envoy counts that as a successful answer, so a
    /// STRICT_DNS cluster drops the name's hosts. Throws when resolution failed (timeout, server
    /// failure): the cluster keeps its last good hosts.
    /// </summary>
    /// <param name="family">
    /// InterNetwork or InterNetworkV6 when only that family is wanted (V4_ONLY, V6_ONLY), else
    /// Unspecified. A hint: the cluster applies dns_lookup_family to the answer itself.
    /// </param>
    Task<IReadOnlyList<IPAddress>> ResolveAsync(string hostName, AddressFamily family, CancellationToken cancellationToken);

    /// <summary>
    /// <see cref="ResolveAsync"/> with each address's TTL, for <c>respect_dns_ttl</c>. A resolver
    /// that knows no TTLs (getaddrinfo) answers zero, which leaves <c>dns_refresh_rate</c> in force,
    /// as Envoy does with a TTL of 0.
    /// </summary>
    async Task<IReadOnlyList<DnsRecord>> ResolveRecordsAsync(string hostName, AddressFamily family, CancellationToken cancellationToken)
    {
        var addresses = await ResolveAsync(hostName, family, cancellationToken).ConfigureAwait(false);
        var records = new DnsRecord[addresses.Count];
        for (var i = 0; i < records.Length; i++)
        {
            records[i] = new DnsRecord(addresses[i], TimeSpan.Zero);
        }

        return records;
    }
}
