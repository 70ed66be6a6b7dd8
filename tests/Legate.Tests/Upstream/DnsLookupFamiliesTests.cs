using System.Net;
using System.Net.Sockets;
using Legate.Upstream;
using LookupFamily = Envoy.Config.Cluster.V3.Cluster.Types.DnsLookupFamily;

namespace Legate.Tests.Upstream;

public sealed class DnsLookupFamiliesTests
{
    [Theory]
    [InlineData(LookupFamily.Auto, "2001:db8::1,10.0.0.1,2001:db8::2,10.0.0.2", "2001:db8::1,2001:db8::2")]
    [InlineData(LookupFamily.Auto, "10.0.0.1,10.0.0.2", "10.0.0.1,10.0.0.2")]
    [InlineData(LookupFamily.V4Only, "2001:db8::1,10.0.0.1,2001:db8::2,10.0.0.2", "10.0.0.1,10.0.0.2")]
    [InlineData(LookupFamily.V4Only, "2001:db8::1", "")]
    [InlineData(LookupFamily.V6Only, "2001:db8::1,10.0.0.1", "2001:db8::1")]
    [InlineData(LookupFamily.V6Only, "10.0.0.1", "")]
    [InlineData(LookupFamily.V4Preferred, "2001:db8::1,10.0.0.1,2001:db8::2,10.0.0.2", "10.0.0.1,10.0.0.2")]
    [InlineData(LookupFamily.V4Preferred, "2001:db8::1,2001:db8::2", "2001:db8::1,2001:db8::2")]
    [InlineData(LookupFamily.All, "2001:db8::1,10.0.0.1,2001:db8::2", "2001:db8::1,10.0.0.1,2001:db8::2")]
    [InlineData(LookupFamily.All, "", "")]
    internal void SelectsAsEnvoyDocuments(LookupFamily family, string answer, string expected)
    {
        var addresses = answer.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(IPAddress.Parse).ToArray();

        var selected = DnsLookupFamilies.Select(family, addresses);

        Assert.Equal(expected, string.Join(",", selected.Select(a => a.ToString())));
    }

    [Theory]
    [InlineData(LookupFamily.Auto, AddressFamily.Unspecified)]
    [InlineData(LookupFamily.V4Only, AddressFamily.InterNetwork)]
    [InlineData(LookupFamily.V6Only, AddressFamily.InterNetworkV6)]
    [InlineData(LookupFamily.V4Preferred, AddressFamily.Unspecified)]
    [InlineData(LookupFamily.All, AddressFamily.Unspecified)]
    internal void AsksForOneFamilyOnlyWhenTheOtherIsNeverUsed(LookupFamily family, AddressFamily query) =>
        Assert.Equal(query, DnsLookupFamilies.QueryFamily(family));

    [Fact]
    public async Task TheSystemResolverReturnsAnIpLiteralWithoutALookup()
    {
        var addresses = await SystemDnsResolver.Instance.ResolveAsync("192.0.2.7", AddressFamily.Unspecified, CancellationToken.None);

        Assert.Equal([IPAddress.Parse("192.0.2.7")], addresses);
    }
}
