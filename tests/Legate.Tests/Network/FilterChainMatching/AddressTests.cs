using System.Net;
using Legate.Network.FilterChainMatching;
using static Legate.Tests.Network.FilterChainMatching.ChainSelector;

namespace Legate.Tests.Network.FilterChainMatching;

/// <summary>IP literals, IPv4-mapped addresses, IPv6 listeners and the defaults of a connection.</summary>
public sealed class AddressTests
{
    [Theory]
    [InlineData("0.0.0.0", false, "0.0.0.0")]
    [InlineData("255.255.255.255", false, "255.255.255.255")]
    [InlineData("10.1.2.3", false, "10.1.2.3")]
    [InlineData("::", true, "::")]
    [InlineData("2001:DB8::1", true, "2001:db8::1")]
    [InlineData("::ffff:10.0.0.1", true, "::ffff:10.0.0.1")]
    public void TryParseLiteral_Accepts(string text, bool isV6, string printed)
    {
        Assert.True(IpBits.TryParseLiteral(text, out var bits));
        Assert.Equal(isV6, bits.IsV6);
        Assert.Equal(printed, bits.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("1")]
    [InlineData("1.2.3")]
    [InlineData("1.2.3.4.5")]
    [InlineData("1.2.3.")]
    [InlineData(".1.2.3")]
    [InlineData("1..2.3")]
    [InlineData("256.0.0.0")]
    [InlineData("01.2.3.4")]
    [InlineData("0x7f.0.0.1")]
    [InlineData("1.2.3.4 ")]
    [InlineData("fe80::1%2")]
    [InlineData("[::1]")]
    [InlineData(":::")]
    [InlineData("localhost")]
    public void TryParseLiteral_RejectsWhatInetPtonRejects(string text) =>
        Assert.False(IpBits.TryParseLiteral(text, out _));

    [Theory]
    [InlineData("10.0.0.1", false, 0x0A00_0001u)]
    [InlineData("::ffff:10.0.0.1", false, 0x0A00_0001u)]
    [InlineData("::10.0.0.1", true, 0x0A00_0001u)]
    [InlineData("::1", true, 1u)]
    public void OfConnection_TurnsMappedAddressesIntoIpv4(string address, bool isV6, uint low)
    {
        var bits = IpBits.OfConnection(IPAddress.Parse(address));

        Assert.Equal(isV6, bits.IsV6);
        Assert.Equal((UInt128)low, bits.Value);
    }

    [Fact]
    public void IpPrefix_ClearsHostBits()
    {
        Assert.True(IpBits.TryParseLiteral("2001:db8:abcd:1234::1", out var v6));
        Assert.True(IpBits.TryParseLiteral("10.1.2.3", out var v4));

        Assert.Equal("2001:db8:ab00::/40", IpPrefix.Of(v6, 40).ToString());
        Assert.Equal("2001:db8:abcd:1234::1/128", IpPrefix.Of(v6, 128).ToString());
        Assert.Equal("::/0", IpPrefix.Of(v6, 0).ToString());
        Assert.Equal("10.0.0.0/9", IpPrefix.Of(v4, 9).ToString());
        Assert.Equal("10.1.2.2/31", IpPrefix.Of(v4, 31).ToString());
        Assert.Equal(IpPrefix.AnyV4, IpPrefix.Of(v4, 0));
    }

    [Fact]
    public void ConnectionDefaults()
    {
        var local = IPEndPoint.Parse("10.0.0.1:443");
        var remote = IPEndPoint.Parse("192.0.2.7:5000");
        var connection = new ConnectionMatchInfo(local, remote);

        Assert.Same(local, connection.LocalEndPoint);
        Assert.Same(remote, connection.RemoteEndPoint);
        Assert.Same(remote, connection.DirectRemoteEndPoint);
        Assert.Equal("", connection.RequestedServerName);
        Assert.Equal("raw_buffer", connection.TransportProtocol);
        Assert.True(connection.ApplicationProtocols.IsDefaultOrEmpty);

        // What proxy_protocol and tls_inspector will do.
        var announced = IPEndPoint.Parse("198.51.100.9:6000");
        var inspected = connection with
        {
            RemoteEndPoint = announced,
            DirectRemoteEndPoint = remote,
            RequestedServerName = "www.example.com",
            TransportProtocol = ConnectionMatchInfo.Tls,
            ApplicationProtocols = ["h2", "http/1.1"],
        };

        Assert.Same(announced, inspected.RemoteEndPoint);
        Assert.Same(remote, inspected.DirectRemoteEndPoint);
        Assert.Equal("www.example.com", inspected.RequestedServerName);
        Assert.Equal("tls", inspected.TransportProtocol);
        Assert.Equal(new[] { "h2", "http/1.1" }, inspected.ApplicationProtocols.ToArray());
    }

    [Theory]
    [InlineData("[2001:db8::1]:443", "[2001:db8:1::5]:5000", null, "v6-source")]
    [InlineData("[2001:db8::1]:443", "[2001:db8:1:2::5]:5000", null, "v6-source-longer")]
    [InlineData("[2001:db8::1]:443", "[2001:db8::1]:5000", null, "local")]
    [InlineData("[2001:db8::1]:443", "[::1]:5000", null, "local")]
    [InlineData("[2001:db8::2]:443", "[2001:db8:ffff::5]:5000", "[fd00::7]:40000", "v6-direct")]
    [InlineData("[2001:db8::2]:443", "[2001:db8:ffff::5]:5000", null, "v6-dest")]
    [InlineData("[2001:db9::1]:443", "[2001:db8:ffff::5]:5000", null, "rest")]
    // A dual-stack listener's IPv4 client: IPv4 ranges apply, IPv6 ones do not.
    [InlineData("[::ffff:10.0.0.1]:443", "[::ffff:192.0.2.7]:5000", null, "v4-source")]
    [InlineData("[::ffff:10.0.0.1]:443", "[::ffff:127.0.0.1]:5000", null, "local")]
    public void Ipv6Listener(string local, string remote, string? direct, string expected)
    {
        var selector = Compile("""
            filter_chains:
            - {name: v6-dest, filter_chain_match: {prefix_ranges: [{address_prefix: "2001:db8::2", prefix_len: 128}]}}
            - {name: v6-direct, filter_chain_match: {prefix_ranges: [{address_prefix: "2001:db8::2", prefix_len: 128}], direct_source_prefix_ranges: [{address_prefix: "fd00::", prefix_len: 8}]}}
            - {name: local, filter_chain_match: {source_type: SAME_IP_OR_LOOPBACK}}
            - {name: v6-source, filter_chain_match: {source_prefix_ranges: [{address_prefix: "2001:db8:1::", prefix_len: 48}]}}
            - {name: v6-source-longer, filter_chain_match: {source_prefix_ranges: [{address_prefix: "2001:db8:1:2::", prefix_len: 64}]}}
            - {name: v4-source, filter_chain_match: {source_prefix_ranges: [{address_prefix: 192.0.2.0, prefix_len: 24}]}}
            - {name: rest}
            """);

        Assert.Equal(expected, selector.Select(local: local, remote: remote, direct: direct));
    }
}
