using System.Globalization;
using System.Net;
using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Legate.Config;
using Legate.Network.FilterChainMatching;
using EnvoyListener = Envoy.Config.Listener.V3.Listener;

namespace Legate.Tests.Network.FilterChainMatching;

/// <summary>
/// A listener with 1,000 chains of four kinds (server name exact or wildcard, destination IP,
/// destination port, TLS with ALPN and source IP), built in C#: every chain is reachable by exactly the
/// connection made for it, the rest falls to the default chain, and matching allocates nothing.
/// </summary>
public sealed class LargeListenerTests
{
    private const int Chains = 1000;

    private static readonly EnvoyListener s_listener = BuildListener();
    private static readonly FilterChainMatcher s_matcher = Compile(s_listener);

    private static EnvoyListener BuildListener()
    {
        var listener = new EnvoyListener { Name = "big", DefaultFilterChain = new FilterChain { Name = "fallback" } };
        for (var i = 0; i < Chains; i++)
        {
            var match = new FilterChainMatch();
            switch (i % 4)
            {
                case 0:
                    match.ServerNames.Add(i % 8 == 0 ? Host(i) : "*." + Host(i));
                    break;
                case 1:
                    match.PrefixRanges.Add(new CidrRange { AddressPrefix = $"10.{i / 256}.{i % 256}.0", PrefixLen = 24 });
                    break;
                case 2:
                    match.DestinationPort = (uint)(20000 + i);
                    break;
                default:
                    match.TransportProtocol = "tls";
                    match.ApplicationProtocols.Add("proto" + i.ToString(CultureInfo.InvariantCulture));
                    match.SourcePrefixRanges.Add(new CidrRange { AddressPrefix = SourceOf(i), PrefixLen = 32 });
                    break;
            }

            listener.FilterChains.Add(new FilterChain { Name = "chain" + i.ToString(CultureInfo.InvariantCulture), FilterChainMatch = match });
        }

        return listener;
    }

    private static FilterChainMatcher Compile(EnvoyListener listener)
    {
        var errors = new ConfigErrors();
        var matcher = FilterChainMatcher.Compile(listener, "listeners[0]", errors);
        Assert.Empty(errors.Errors);
        return matcher!;
    }

    private static string Host(int i) => "host" + i.ToString(CultureInfo.InvariantCulture) + ".example.com";

    private static string SourceOf(int i) => $"172.16.{i / 256}.{i % 256}";

    /// <summary>The connection that only chain <paramref name="i"/> claims.</summary>
    private static ConnectionMatchInfo ConnectionFor(int i)
    {
        var local = new IPEndPoint(IPAddress.Parse("192.168.0.1"), 443);
        var remote = new IPEndPoint(IPAddress.Parse("203.0.113.1"), 5000);
        return (i % 4) switch
        {
            0 => new ConnectionMatchInfo(local, remote) { RequestedServerName = i % 8 == 0 ? Host(i) : "www." + Host(i) },
            1 => new ConnectionMatchInfo(new IPEndPoint(IPAddress.Parse($"10.{i / 256}.{i % 256}.5"), 443), remote),
            2 => new ConnectionMatchInfo(new IPEndPoint(local.Address, 20000 + i), remote),
            _ => new ConnectionMatchInfo(local, new IPEndPoint(IPAddress.Parse(SourceOf(i)), 5000))
            {
                TransportProtocol = ConnectionMatchInfo.Tls,
                ApplicationProtocols = ["h2", "proto" + i.ToString(CultureInfo.InvariantCulture)],
            },
        };
    }

    [Fact]
    public void EveryChainIsChosenForItsConnection()
    {
        Assert.Equal(Chains, s_matcher.FilterChainCount);
        for (var i = 0; i < Chains; i++)
        {
            Assert.Equal(i, s_matcher.Match(ConnectionFor(i)));
        }
    }

    [Theory]
    // Plain text, no SNI: the only chains without server names, IP or port want TLS.
    [InlineData("192.168.0.1:443", "203.0.113.1:5000", "", null, FilterChainMatcher.DefaultFilterChain)]
    [InlineData("192.168.0.1:443", "203.0.113.1:5000", "host1.example.com", null, FilterChainMatcher.DefaultFilterChain)]
    [InlineData("192.168.0.1:443", "203.0.113.1:5000", "HOST992.EXAMPLE.COM", null, 992)]
    [InlineData("192.168.0.1:443", "203.0.113.1:5000", "a.b.host996.example.com", null, 996)]
    [InlineData("192.168.0.1:443", "203.0.113.1:5000", "host996.example.com", null, FilterChainMatcher.DefaultFilterChain)]
    // Port 20001 belongs to no chain (chain 1 is an IP chain): port-less chains go on.
    [InlineData("192.168.0.1:20001", "203.0.113.1:5000", "host8.example.com", null, 8)]
    [InlineData("192.168.0.1:20002", "203.0.113.1:5000", "host8.example.com", null, 2)]
    // 10.3.229.0/24 is chain 997's (3 * 256 + 229 = 997); 10.3.231.0/24 and 10.3.232.0/24 are nobody's.
    [InlineData("10.3.231.200:443", "203.0.113.1:5000", "", null, FilterChainMatcher.DefaultFilterChain)]
    [InlineData("10.3.229.200:443", "203.0.113.1:5000", "host0.example.com", null, 997)]
    [InlineData("10.3.232.1:443", "203.0.113.1:5000", "host0.example.com", null, 0)]
    // TLS from a known source but without the chain's protocol.
    [InlineData("192.168.0.1:443", "172.16.0.3:5000", "", "tls", FilterChainMatcher.DefaultFilterChain)]
    public void OtherConnections(string local, string remote, string sni, string? transport, int expected)
    {
        var connection = new ConnectionMatchInfo(IPEndPoint.Parse(local), IPEndPoint.Parse(remote))
        {
            RequestedServerName = sni,
            TransportProtocol = transport ?? string.Empty,
        };

        Assert.Equal(expected, s_matcher.Match(connection));
    }

    [Fact]
    public void MatchingAllocatesNothing()
    {
        var connections = new ConnectionMatchInfo[Chains + 2];
        for (var i = 0; i < Chains; i++)
        {
            connections[i] = ConnectionFor(i);
        }

        connections[Chains] = ChainSelector.Connection(local: "[2001:db8::1]:443", remote: "[::ffff:192.0.2.1]:5000", sni: "a.b.example.com", transport: "tls", alpn: ["h2"]);
        connections[Chains + 1] = ChainSelector.Connection(local: "[::ffff:10.0.1.9]:443", sni: "HOST16.example.com");

        var sum = 0L;
        foreach (var connection in connections)
        {
            sum += s_matcher.Match(connection);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var round = 0; round < 3; round++)
        {
            foreach (var connection in connections)
            {
                sum += s_matcher.Match(connection);
            }
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);

        // Chains 0..999 once each, then the IPv6 one (default, -2) and the mapped one (chain 1), four times.
        Assert.Equal(4 * ((Chains * (Chains - 1) / 2) - 2 + 1), sum);
    }
}
