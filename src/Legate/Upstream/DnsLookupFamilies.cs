using System.Net;
using System.Net.Sockets;
using LookupFamily = Envoy.Config.Cluster.V3.Cluster.Types.DnsLookupFamily;

namespace Legate.Upstream;

/// <summary>Envoy's <c>dns_lookup_family</c>, applied to a resolver's answer.</summary>
internal static class DnsLookupFamilies
{
    /// <summary>The family to ask the resolver for: a single one only when the other is never used.</summary>
    public static AddressFamily QueryFamily(LookupFamily family) => family switch
    {
        LookupFamily.V4Only => AddressFamily.InterNetwork,
        LookupFamily.V6Only => AddressFamily.InterNetworkV6,
        _ => AddressFamily.Unspecified,
    };

    /// <summary>
    /// The addresses a cluster uses, in the resolver's order:
    /// V4_ONLY / V6_ONLY keep one family; AUTO takes the IPv6 addresses, or the IPv4 ones when
    /// there are no IPv6 addresses ("V6_PREFERRED"); V4_PREFERRED the other way round; ALL keeps
    /// both.
    /// </summary>
    public static IPAddress[] Select(LookupFamily family, IReadOnlyList<IPAddress> addresses) => family switch
    {
        LookupFamily.V4Only => Only(addresses, AddressFamily.InterNetwork),
        LookupFamily.V6Only => Only(addresses, AddressFamily.InterNetworkV6),
        LookupFamily.V4Preferred => Preferred(addresses, AddressFamily.InterNetwork, AddressFamily.InterNetworkV6),
        LookupFamily.All => Only(addresses, AddressFamily.InterNetwork, AddressFamily.InterNetworkV6),
        _ => Preferred(addresses, AddressFamily.InterNetworkV6, AddressFamily.InterNetwork),
    };

    private static IPAddress[] Preferred(IReadOnlyList<IPAddress> addresses, AddressFamily first, AddressFamily fallback)
    {
        var preferred = Only(addresses, first);
        return preferred.Length > 0 ? preferred : Only(addresses, fallback);
    }

    private static IPAddress[] Only(IReadOnlyList<IPAddress> addresses, AddressFamily family, AddressFamily alsoFamily = AddressFamily.Unknown)
    {
        var result = new List<IPAddress>(addresses.Count);
        foreach (var address in addresses)
        {
            if (address.AddressFamily == family || address.AddressFamily == alsoFamily)
            {
                result.Add(address);
            }
        }

        return result.ToArray();
    }
}
