using Legate.Network.FilterChainMatching;
using static Legate.Tests.Network.FilterChainMatching.ChainSelector;

namespace Legate.Tests.Network.FilterChainMatching;

/// <summary>
/// Envoy's filter chain precedence, one criterion at a time and then their order: each table row
/// is a connection and the chain it must get.
/// </summary>
public sealed class FilterChainPrecedenceTests
{
    private const string Ports = """
        filter_chains:
        - {name: port443, filter_chain_match: {destination_port: 443}}
        - {name: port8443-a, filter_chain_match: {destination_port: 8443, server_names: [a.example.com]}}
        - {name: any-port, filter_chain_match: {}}
        """;

    [Theory]
    [InlineData("10.0.0.1:443", "", "port443")]
    [InlineData("10.0.0.1:443", "a.example.com", "port443")]
    [InlineData("10.0.0.1:80", "", "any-port")]
    [InlineData("10.0.0.1:8443", "a.example.com", "port8443-a")]
    // Chains name port 8443, so the port-less chain is out even though it would match.
    [InlineData("10.0.0.1:8443", "b.example.com", None)]
    [InlineData("10.0.0.1:8443", "", None)]
    public void DestinationPort(string local, string sni, string expected) =>
        Assert.Equal(expected, Compile(Ports).Select(local: local, sni: sni));

    [Fact]
    public void DestinationPort_FailedPortFallsBackToTheDefaultChainNotToPortlessChains()
    {
        var selector = Compile(Ports + "\ndefault_filter_chain: {name: fallback}\n");

        Assert.Equal(Default, selector.Select(local: "10.0.0.1:8443", sni: "b.example.com"));
        Assert.Equal("any-port", selector.Select(local: "10.0.0.1:80", sni: "b.example.com"));
    }

    private const string DestinationIps = """
        filter_chains:
        - {name: slash8, filter_chain_match: {prefix_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}]}}
        - {name: slash16-a, filter_chain_match: {prefix_ranges: [{address_prefix: 10.1.0.0, prefix_len: 16}], server_names: [a.example.com]}}
        - {name: host, filter_chain_match: {prefix_ranges: [{address_prefix: 10.1.2.3, prefix_len: 32}]}}
        - {name: two-ranges, filter_chain_match: {prefix_ranges: [{address_prefix: 172.16.0.0, prefix_len: 12}, {address_prefix: 192.168.0.0, prefix_len: 16}]}}
        - {name: v6, filter_chain_match: {prefix_ranges: [{address_prefix: "2001:db8::", prefix_len: 32}]}}
        - {name: v6-longer, filter_chain_match: {prefix_ranges: [{address_prefix: "2001:db8:1::", prefix_len: 48}]}}
        - {name: any-ip, filter_chain_match: {}}
        """;

    [Theory]
    [InlineData("10.1.2.3:443", "", "host")]
    [InlineData("10.1.2.4:443", "a.example.com", "slash16-a")]
    // 10.1.0.0/16 is the longest match, and its only chain wants a.example.com: /8 is out.
    [InlineData("10.1.2.4:443", "b.example.com", None)]
    [InlineData("10.200.0.1:443", "", "slash8")]
    [InlineData("172.31.255.255:443", "", "two-ranges")]
    [InlineData("172.32.0.0:443", "", "any-ip")]
    [InlineData("192.168.7.7:443", "", "two-ranges")]
    [InlineData("11.0.0.1:443", "", "any-ip")]
    [InlineData("[2001:db8::1]:443", "", "v6")]
    [InlineData("[2001:db8:1::1]:443", "", "v6-longer")]
    [InlineData("[2001:db9::1]:443", "", "any-ip")]
    [InlineData("[::1]:443", "", "any-ip")]
    // An IPv4 client of a dual-stack socket shows as ::ffff:a.b.c.d; it matches as IPv4, as in Envoy.
    [InlineData("[::ffff:10.1.2.3]:443", "", "host")]
    [InlineData("[::ffff:10.200.0.1]:443", "", "slash8")]
    public void DestinationIp_LongestPrefixWins(string local, string sni, string expected) =>
        Assert.Equal(expected, Compile(DestinationIps).Select(local: local, sni: sni));

    [Fact]
    public void DestinationIp_ChainsOfOneFamilyDoNotMatchTheOther()
    {
        var selector = Compile("""
            filter_chains:
            - {name: v4, filter_chain_match: {prefix_ranges: [{address_prefix: 0.0.0.0, prefix_len: 0}]}}
            default_filter_chain: {name: fallback}
            """);

        Assert.Equal("v4", selector.Select(local: "203.0.113.9:443"));
        Assert.Equal(Default, selector.Select(local: "[2001:db8::1]:443"));
    }

    private const string ServerNames = """
        filter_chains:
        - {name: exact, filter_chain_match: {server_names: [www.example.com]}}
        - {name: wild, filter_chain_match: {server_names: ["*.example.com"]}}
        - {name: deeper-wild, filter_chain_match: {server_names: ["*.api.example.com"]}}
        - {name: com, filter_chain_match: {server_names: ["*.com"]}}
        - {name: mixed-case, filter_chain_match: {server_names: [Mail.Example.ORG, other.example.net]}}
        - {name: exact-tls, filter_chain_match: {server_names: [secure.example.com], transport_protocol: tls}}
        - {name: any-name, filter_chain_match: {}}
        """;

    [Theory]
    [InlineData("www.example.com", "exact")]
    [InlineData("WWW.Example.COM", "exact")]
    [InlineData("api.example.com", "wild")]
    [InlineData("a.b.example.com", "wild")]
    [InlineData("v1.api.example.com", "deeper-wild")]
    // A wildcard never matches its bare suffix: example.com is caught by *.com.
    [InlineData("example.com", "com")]
    [InlineData("example.org", "any-name")]
    [InlineData("mail.example.org", "mixed-case")]
    [InlineData("other.example.net", "mixed-case")]
    [InlineData("com", "any-name")]
    [InlineData("", "any-name")]
    [InlineData("www.example.com.", "any-name")]
    // The exact name wins and then wants TLS: the wildcard chains are out.
    [InlineData("secure.example.com", None)]
    public void ServerNames_ExactThenLongestWildcardThenNone(string sni, string expected) =>
        Assert.Equal(expected, Compile(ServerNames).Select(sni: sni));

    [Fact]
    public void ServerNames_WithoutCatchAllChainNoSniMatchesNothing()
    {
        var selector = Compile("""
            filter_chains:
            - {name: wild, filter_chain_match: {server_names: ["*.example.com"]}}
            """);

        Assert.Equal("wild", selector.Select(sni: "x.example.com"));
        Assert.Equal(None, selector.Select(sni: ""));
        Assert.Equal(None, selector.Select(sni: "example.com"));
    }

    private const string Transports = """
        filter_chains:
        - {name: tls, filter_chain_match: {transport_protocol: tls}}
        - {name: raw, filter_chain_match: {transport_protocol: raw_buffer}}
        - {name: any-transport, filter_chain_match: {}}
        """;

    [Theory]
    [InlineData("tls", "tls")]
    [InlineData(null, "raw")]
    [InlineData("", "raw")]
    [InlineData("raw_buffer", "raw")]
    [InlineData("TLS", "any-transport")]
    [InlineData("quic", "any-transport")]
    public void TransportProtocol_ExactThenUnset(string? transport, string expected) =>
        Assert.Equal(expected, Compile(Transports).Select(transport: transport));

    private const string Alpns = """
        filter_chains:
        - {name: h2, filter_chain_match: {application_protocols: [h2]}}
        - {name: http11, filter_chain_match: {application_protocols: [http/1.1, http/1.0]}}
        - {name: any-alpn, filter_chain_match: {}}
        """;

    [Theory]
    [InlineData("h2", "h2")]
    [InlineData("h2,http/1.1", "h2")]
    // The client's order decides, not the order of the chains.
    [InlineData("http/1.1,h2", "http11")]
    [InlineData("spdy/3,http/1.0", "http11")]
    [InlineData("spdy/3", "any-alpn")]
    [InlineData("H2", "any-alpn")]
    [InlineData("", "any-alpn")]
    public void ApplicationProtocols_FirstClientProtocolSomeChainNamesWins(string alpn, string expected) =>
        Assert.Equal(expected, Compile(Alpns).Select(alpn: alpn.Length == 0 ? [] : alpn.Split(',')));

    private const string DirectSources = """
        filter_chains:
        - {name: direct-lb, filter_chain_match: {direct_source_prefix_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}]}}
        - {name: direct-lb-host, filter_chain_match: {direct_source_prefix_ranges: [{address_prefix: 10.0.0.5, prefix_len: 32}], source_prefix_ranges: [{address_prefix: 198.51.100.0, prefix_len: 24}]}}
        - {name: source, filter_chain_match: {source_prefix_ranges: [{address_prefix: 192.0.2.0, prefix_len: 24}]}}
        - {name: any-source, filter_chain_match: {}}
        """;

    [Theory]
    // PROXY protocol: the load balancer 10.0.0.9 connected, announcing client 192.0.2.7.
    [InlineData("192.0.2.7:5000", "10.0.0.9:40000", "direct-lb")]
    [InlineData("198.51.100.1:5000", "10.0.0.5:40000", "direct-lb-host")]
    // 10.0.0.5/32 is the most specific direct source, and its chain wants another source.
    [InlineData("192.0.2.7:5000", "10.0.0.5:40000", None)]
    [InlineData("192.0.2.7:5000", "172.16.0.1:40000", "source")]
    [InlineData("203.0.113.1:5000", "172.16.0.1:40000", "any-source")]
    public void DirectSourceIp_IsMatchedBeforeAndApartFromTheSource(string remote, string direct, string expected) =>
        Assert.Equal(expected, Compile(DirectSources).Select(remote: remote, direct: direct));

    [Fact]
    public void DirectSourceIp_DefaultsToTheRemoteAddress()
    {
        var selector = Compile(DirectSources);

        Assert.Equal("direct-lb", selector.Select(remote: "10.9.9.9:5000"));
        Assert.Equal("source", selector.Select(remote: "192.0.2.1:5000"));
    }

    private const string SourceTypes = """
        filter_chains:
        - {name: local, filter_chain_match: {source_type: SAME_IP_OR_LOOPBACK}}
        - {name: external, filter_chain_match: {source_type: EXTERNAL}}
        - {name: any-type, filter_chain_match: {source_type: ANY, source_ports: [7]}}
        """;

    [Theory]
    [InlineData("10.0.0.1:443", "127.0.0.1:5000", "local")]
    [InlineData("[::1]:443", "[::1]:5000", "local")]
    [InlineData("10.0.0.1:443", "[::ffff:127.0.0.1]:5000", "local")]
    // The same IP as the local address, any port, counts as local.
    [InlineData("10.0.0.1:443", "10.0.0.1:5000", "local")]
    [InlineData("[2001:db8::1]:443", "[2001:db8::1]:5000", "local")]
    // Envoy's loopback test is 127.0.0.1 exactly, not 127.0.0.0/8.
    [InlineData("10.0.0.1:443", "127.0.0.2:5000", "external")]
    [InlineData("10.0.0.1:443", "10.0.0.2:5000", "external")]
    [InlineData("10.0.0.1:443", "[2001:db8::1]:5000", "external")]
    // EXTERNAL is more specific than ANY even where the ANY chain names the source port.
    [InlineData("10.0.0.1:443", "192.0.2.7:7", "external")]
    public void SourceType_LocalOrExternal(string local, string remote, string expected) =>
        Assert.Equal(expected, Compile(SourceTypes).Select(local: local, remote: remote));

    [Fact]
    public void SourceType_AnyChainsServeTheKindNoChainAsksFor()
    {
        var selector = Compile("""
            filter_chains:
            - {name: local, filter_chain_match: {source_type: SAME_IP_OR_LOOPBACK}}
            - {name: any-type, filter_chain_match: {}}
            """);

        Assert.Equal("local", selector.Select(remote: "127.0.0.1:5000"));
        Assert.Equal("any-type", selector.Select(remote: "192.0.2.7:5000"));
    }

    [Fact]
    public void SourceType_KindWithChainsNeverFallsBackToAny()
    {
        var selector = Compile("""
            filter_chains:
            - {name: external-10, filter_chain_match: {source_type: EXTERNAL, source_prefix_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}]}}
            - {name: any-type, filter_chain_match: {}}
            """);

        Assert.Equal("external-10", selector.Select(remote: "10.2.3.4:5000"));
        Assert.Equal(None, selector.Select(remote: "192.0.2.7:5000"));
        Assert.Equal("any-type", selector.Select(remote: "127.0.0.1:5000"));
    }

    private const string Sources = """
        filter_chains:
        - {name: slash24, filter_chain_match: {source_prefix_ranges: [{address_prefix: 192.0.2.0, prefix_len: 24}]}}
        - {name: slash28-ports, filter_chain_match: {source_prefix_ranges: [{address_prefix: 192.0.2.16, prefix_len: 28}], source_ports: [5000, 5001]}}
        - {name: v6-source, filter_chain_match: {source_prefix_ranges: [{address_prefix: "2001:db8::", prefix_len: 64}]}}
        - {name: port-only, filter_chain_match: {source_ports: [5000]}}
        - {name: any-source, filter_chain_match: {}}
        """;

    [Theory]
    [InlineData("192.0.2.7:5000", "slash24")]
    [InlineData("192.0.2.17:5000", "slash28-ports")]
    [InlineData("192.0.2.17:5001", "slash28-ports")]
    // 192.0.2.16/28 wins on IP and then wants port 5000 or 5001.
    [InlineData("192.0.2.17:6000", None)]
    [InlineData("[2001:db8::42]:6000", "v6-source")]
    [InlineData("[2001:db8:0:1::42]:5000", "port-only")]
    [InlineData("203.0.113.1:5000", "port-only")]
    [InlineData("203.0.113.1:5002", "any-source")]
    public void SourceIpThenSourcePort(string remote, string expected) =>
        Assert.Equal(expected, Compile(Sources).Select(remote: remote));

    [Fact]
    public void DefaultFilterChain_WhenNothingMatches()
    {
        var selector = Compile("""
            filter_chains:
            - {name: tls, filter_chain_match: {transport_protocol: tls}}
            default_filter_chain: {name: fallback}
            """);

        Assert.Equal("tls", selector.Select(transport: "tls"));
        Assert.Equal(Default, selector.Select());
        Assert.Equal(FilterChainMatcher.DefaultFilterChain, selector.Matcher.Match(Connection()));
        Assert.True(selector.Matcher.HasDefaultFilterChain);
        Assert.Equal(1, selector.Matcher.FilterChainCount);
    }

    [Fact]
    public void NoMatch_WithoutDefaultFilterChain()
    {
        var selector = Compile("""
            filter_chains:
            - {name: tls, filter_chain_match: {transport_protocol: tls}}
            """);

        Assert.Equal(FilterChainMatcher.NoMatch, selector.Matcher.Match(Connection()));
        Assert.False(selector.Matcher.HasDefaultFilterChain);
    }

    [Fact]
    public void OnlyDefaultFilterChain_ServesEveryConnection()
    {
        var selector = Compile("default_filter_chain: {name: fallback}\n");

        Assert.Equal(Default, selector.Select());
        Assert.Equal(Default, selector.Select(local: "[::1]:1", remote: "[::1]:2", sni: "x", transport: "tls", alpn: ["h2"]));
        Assert.Equal(0, selector.Matcher.FilterChainCount);
    }

    [Fact]
    public void EmptyMatch_ServesEveryConnection()
    {
        var selector = Compile("filter_chains:\n- {name: all}\n");

        Assert.Equal("all", selector.Select());
        Assert.Equal("all", selector.Select(local: "[2001:db8::1]:1", remote: "[::1]:2", sni: "x", transport: "tls", alpn: ["h2"]));
    }

    /// <summary>
    /// One chain per criterion, each matching the same connection; without the chains of the
    /// earlier criteria, the chain of the next one wins. This pins the whole order.
    /// </summary>
    private static readonly string[] s_oneChainPerCriterion =
    [
        "{name: destination_port, filter_chain_match: {destination_port: 443}}",
        "{name: prefix_ranges, filter_chain_match: {prefix_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}]}}",
        "{name: server_names, filter_chain_match: {server_names: [www.example.com]}}",
        "{name: transport_protocol, filter_chain_match: {transport_protocol: tls}}",
        "{name: application_protocols, filter_chain_match: {application_protocols: [h2]}}",
        "{name: direct_source_prefix_ranges, filter_chain_match: {direct_source_prefix_ranges: [{address_prefix: 172.16.0.0, prefix_len: 12}]}}",
        "{name: source_type, filter_chain_match: {source_type: EXTERNAL}}",
        "{name: source_prefix_ranges, filter_chain_match: {source_prefix_ranges: [{address_prefix: 192.0.2.0, prefix_len: 24}]}}",
        "{name: source_ports, filter_chain_match: {source_ports: [5000]}}",
        "{name: nothing}",
    ];

    public static TheoryData<int> Criteria() => [.. Enumerable.Range(0, s_oneChainPerCriterion.Length)];

    [Theory]
    [MemberData(nameof(Criteria))]
    public void CriteriaApplyInEnvoysOrder(int first)
    {
        var yaml = "filter_chains:\n" + string.Concat(s_oneChainPerCriterion.Skip(first).Reverse().Select(c => "- " + c + "\n"));
        var selector = Compile(yaml);

        var chosen = selector.Select(
            local: "10.0.0.1:443", remote: "192.0.2.7:5000", direct: "172.16.0.9:40000",
            sni: "www.example.com", transport: "tls", alpn: ["h2"]);

        var chain = s_oneChainPerCriterion[first];
        var expected = chain["{name: ".Length..chain.IndexOfAny([',', '}'])];
        Assert.Equal(expected, chosen);
    }

    [Fact]
    public void DestinationPortBeatsServerNames()
    {
        var selector = Compile("""
            filter_chains:
            - {name: sni, filter_chain_match: {server_names: [a.example.com]}}
            - {name: port, filter_chain_match: {destination_port: 443}}
            """);

        Assert.Equal("port", selector.Select(local: "10.0.0.1:443", sni: "a.example.com"));
        Assert.Equal("sni", selector.Select(local: "10.0.0.1:80", sni: "a.example.com"));
        Assert.Equal(None, selector.Select(local: "10.0.0.1:80", sni: "b.example.com"));
    }

    [Fact]
    public void ExplicitCatchAllRangeSharesTheBranchOfUnsetRanges()
    {
        // 0.0.0.0/0 and "no prefix_ranges" are the same IPv4 key, as in Envoy; the server name
        // below it then decides.
        var selector = Compile("""
            filter_chains:
            - {name: all-v4-a, filter_chain_match: {prefix_ranges: [{address_prefix: 0.0.0.0, prefix_len: 0}], server_names: [a.example.com]}}
            - {name: unset, filter_chain_match: {}}
            """);

        Assert.Equal("all-v4-a", selector.Select(sni: "a.example.com"));
        Assert.Equal("unset", selector.Select(sni: "b.example.com"));
        Assert.Equal("unset", selector.Select(local: "[2001:db8::1]:443", sni: "a.example.com"));
    }

    [Fact]
    public void HostBitsOfARangeAreIgnored()
    {
        var selector = Compile("""
            filter_chains:
            - {name: net, filter_chain_match: {prefix_ranges: [{address_prefix: 10.1.2.3, prefix_len: 16}]}}
            """);

        Assert.Equal("net", selector.Select(local: "10.1.200.200:443"));
        Assert.Equal(None, selector.Select(local: "10.2.0.1:443"));
    }
}
