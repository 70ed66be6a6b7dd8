using Envoy.Config.Listener.V3;
using static Legate.Tests.Network.FilterChainMatching.ChainSelector;

namespace Legate.Tests.Network.FilterChainMatching;

/// <summary>Invalid filter_chain_match values: every error and warning with its exact path and message.</summary>
public sealed class FilterChainMatchValidationTests
{
    private const string Chain1 = "static_resources.listeners[0].filter_chains[1].filter_chain_match";

    private static void AssertErrors(string yaml, params string[] expected)
    {
        var (errors, _, matcher) = Problems(yaml);
        // Joined, so a failure shows whole messages.
        Assert.Equal(string.Join("\n", expected), string.Join("\n", errors));
        Assert.Null(matcher);
    }

    private static void AssertWarnings(string yaml, params string[] expected)
    {
        var (errors, warnings, matcher) = Problems(yaml);
        Assert.Equal("", string.Join("\n", errors));
        Assert.Equal(string.Join("\n", expected), string.Join("\n", warnings));
        Assert.NotNull(matcher);
    }

    [Theory]
    [InlineData("10.0.0.300")]
    [InlineData("10.1")]
    [InlineData("010.0.0.1")]
    [InlineData("10.0.0.0/8")]
    [InlineData("example.com")]
    [InlineData("")]
    [InlineData("fe80::1%eth0")]
    [InlineData("[2001:db8::]")]
    [InlineData("2001:db8:::1")]
    public void MalformedAddressPrefix(string address) => AssertErrors(
        $$$"""
        filter_chains:
        - {name: ok}
        - {name: bad, filter_chain_match: {prefix_ranges: [{address_prefix: "{{{address}}}", prefix_len: 8}]}}
        """,
        $"{Chain1}.prefix_ranges[0].address_prefix: malformed IP address \"{address}\": expected an IPv4 or IPv6 literal such as 10.0.0.0 or 2001:db8::");

    [Fact]
    public void EveryRangeFieldIsCheckedWithItsPath() => AssertErrors(
        """
        filter_chains:
        - {name: ok}
        - name: bad
          filter_chain_match:
            prefix_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}, {address_prefix: 10.0.0.0, prefix_len: 33}]
            direct_source_prefix_ranges: [{address_prefix: "2001:db8::", prefix_len: 129}]
            source_prefix_ranges: [{address_prefix: 192.0.2.0, prefix_len: 24}, {address_prefix: 192.0.2, prefix_len: 24}]
        """,
        $"{Chain1}.prefix_ranges[1].prefix_len: prefix_len 33 is longer than an IPv4 address (32 bits)",
        $"{Chain1}.direct_source_prefix_ranges[0].prefix_len: prefix_len 129 is longer than an IPv6 address (128 bits)",
        $"{Chain1}.source_prefix_ranges[1].address_prefix: malformed IP address \"192.0.2\": expected an IPv4 or IPv6 literal such as 10.0.0.0 or 2001:db8::");

    [Theory]
    [InlineData("foo.*.com")]
    [InlineData("*w.example.com")]
    [InlineData("www.example.*")]
    [InlineData("*.*.com")]
    [InlineData("*.")]
    public void PartialWildcardServerName(string name) => AssertErrors(
        $$$"""
        filter_chains:
        - {name: ok}
        - {name: bad, filter_chain_match: {server_names: [a.example.com, "{{{name}}}"]}}
        """,
        $"{Chain1}.server_names[1]: partial wildcards are not supported in \"server_names\": \"{name}\"; only a leading \"*.\" is, as in *.example.com");

    [Fact]
    public void StarAloneAndEmptyNames() => AssertErrors(
        """
        filter_chains:
        - {name: ok}
        - {name: bad, filter_chain_match: {server_names: ["*", ""], application_protocols: [h2, ""]}}
        """,
        $"{Chain1}.server_names[0]: \"*\" is not supported in server_names (as in Envoy); omit server_names to match any server name",
        $"{Chain1}.server_names[1]: an empty server name is not allowed; omit server_names to match any server name",
        $"{Chain1}.application_protocols[1]: an empty application protocol is not allowed; omit application_protocols to match any");

    [Fact]
    public void PortsOutOfRange() => AssertErrors(
        """
        filter_chains:
        - {name: ok}
        - {name: bad, filter_chain_match: {destination_port: 70000, source_ports: [80, 0, 65536]}}
        """,
        $"{Chain1}.destination_port: 70000 is not a valid port (1-65535)",
        $"{Chain1}.source_ports[1]: 0 is not a valid port (1-65535)",
        $"{Chain1}.source_ports[2]: 65536 is not a valid port (1-65535)");

    [Fact]
    public void UnimplementedSuffixFields() => AssertErrors(
        """
        filter_chains:
        - {name: ok}
        - {name: bad, filter_chain_match: {address_suffix: "::1", suffix_len: 8}}
        """,
        $"{Chain1}.address_suffix: address_suffix is not implemented (Envoy rejects it too)",
        $"{Chain1}.suffix_len: suffix_len is not implemented (Envoy rejects it too)");

    [Fact]
    public void UnknownSourceType()
    {
        var listener = Parse("filter_chains:\n- {name: ok}\n- {name: bad}\n");
        listener.FilterChains[1].FilterChainMatch = new FilterChainMatch { SourceType = (FilterChainMatch.Types.ConnectionSourceType)7 };

        var (errors, _, matcher) = Problems(listener);

        Assert.Equal([$"{Chain1}.source_type: unknown source_type 7: expected ANY, SAME_IP_OR_LOOPBACK or EXTERNAL"], errors);
        Assert.Null(matcher);
    }

    [Fact]
    public void IdenticalMatches() => AssertErrors(
        """
        filter_chains:
        - {name: a, filter_chain_match: {server_names: [a.example.com, b.example.com], destination_port: 443}}
        - {name: b, filter_chain_match: {destination_port: 443, server_names: [B.example.com, a.example.com]}}
        - {name: c}
        - {name: d, filter_chain_match: {}}
        - {name: e, filter_chain_match: {prefix_ranges: [{address_prefix: 10.9.9.9, prefix_len: 8}]}}
        - {name: f, filter_chain_match: {prefix_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}]}}
        """,
        $"{Chain1}: multiple filter chains with the same matching rules are defined (same as static_resources.listeners[0].filter_chains[0])",
        "static_resources.listeners[0].filter_chains[3].filter_chain_match: multiple filter chains with the same matching rules are defined (same as static_resources.listeners[0].filter_chains[2])",
        "static_resources.listeners[0].filter_chains[5].filter_chain_match: multiple filter chains with the same matching rules are defined (same as static_resources.listeners[0].filter_chains[4])");

    [Fact]
    public void OverlappingMatchesNameTheConnectionsBothClaim() => AssertErrors(
        """
        filter_chains:
        - {name: a, filter_chain_match: {server_names: [a.example.com, b.example.com], source_ports: [1, 2]}}
        - {name: b, filter_chain_match: {server_names: [b.example.com, c.example.com], source_ports: [2, 3]}}
        - {name: c, filter_chain_match: {prefix_ranges: [{address_prefix: 0.0.0.0, prefix_len: 0}], transport_protocol: tls}}
        - {name: d, filter_chain_match: {transport_protocol: tls}}
        """,
        "static_resources.listeners[0].filter_chains[1].filter_chain_match: multiple filter chains with overlapping matching rules are defined (a connection with server_names \"b.example.com\", source_ports 2 matches both this chain and static_resources.listeners[0].filter_chains[0])",
        "static_resources.listeners[0].filter_chains[3].filter_chain_match: multiple filter chains with overlapping matching rules are defined (a connection with prefix_ranges 0.0.0.0/0 (the same as no prefix_ranges), transport_protocol \"tls\" matches both this chain and static_resources.listeners[0].filter_chains[2])");

    [Fact]
    public void CatchAllRangeOverlapsNoRange() => AssertErrors(
        """
        filter_chains:
        - {name: a, filter_chain_match: {server_names: [a.example.com]}}
        - {name: b, filter_chain_match: {server_names: [a.example.com], prefix_ranges: [{address_prefix: "::", prefix_len: 0}]}}
        """,
        $"{Chain1}: multiple filter chains with overlapping matching rules are defined (a connection with prefix_ranges ::/0 (the same as no prefix_ranges), server_names \"a.example.com\" matches both this chain and static_resources.listeners[0].filter_chains[0])");

    [Fact]
    public void DifferentValuesDoNotOverlap()
    {
        // Same shape, disjoint values at some step: all valid.
        var selector = Compile("""
            filter_chains:
            - {name: a, filter_chain_match: {server_names: [a.example.com], source_ports: [1]}}
            - {name: b, filter_chain_match: {server_names: [a.example.com], source_ports: [2]}}
            - {name: c, filter_chain_match: {server_names: ["*.example.com"]}}
            - {name: d, filter_chain_match: {server_names: [a.example.com], source_type: EXTERNAL, source_ports: [1]}}
            - {name: e, filter_chain_match: {prefix_ranges: [{address_prefix: "::", prefix_len: 0}]}}
            - {name: f, filter_chain_match: {prefix_ranges: [{address_prefix: 0.0.0.0, prefix_len: 0}]}}
            """);

        Assert.Equal("a", selector.Select(sni: "a.example.com", remote: "127.0.0.1:1"));
        Assert.Equal("b", selector.Select(sni: "a.example.com", remote: "127.0.0.1:2"));
        Assert.Equal("d", selector.Select(sni: "a.example.com", remote: "192.0.2.7:1"));

        // EXTERNAL (d) beats ANY (b) for this client, and then wants source port 1.
        Assert.Equal(None, selector.Select(sni: "a.example.com", remote: "192.0.2.7:2"));
        Assert.Equal("c", selector.Select(sni: "x.example.com"));
        Assert.Equal("f", selector.Select(sni: "x.example.org"));
        Assert.Equal("e", selector.Select(local: "[2001:db8::1]:443", sni: "x.example.org"));
    }

    [Fact]
    public void UnsetPrefixLenWarnsThatItMatchesTheWholeFamily() => AssertWarnings(
        """
        filter_chains:
        - {name: a, filter_chain_match: {source_ports: [1]}}
        - {name: b, filter_chain_match: {source_prefix_ranges: [{address_prefix: 10.0.0.1}]}}
        """,
        $"{Chain1}.source_prefix_ranges[0]: prefix_len is not set, so 10.0.0.1/0 matches every IPv4 address (as in Envoy); set prefix_len (32 for this one address)");

    [Fact]
    public void Ipv4MappedRangeWarnsThatItNeverMatches() => AssertWarnings(
        """
        filter_chains:
        - {name: a}
        - {name: b, filter_chain_match: {prefix_ranges: [{address_prefix: "::ffff:10.0.0.0", prefix_len: 104}]}}
        """,
        $"{Chain1}.prefix_ranges[0]: ::ffff:10.0.0.0/104 is an IPv4-mapped IPv6 range and never matches: as in Envoy, IPv4 clients of a dual-stack listener are matched by their IPv4 address; write the IPv4 range instead");

    [Fact]
    public void DefaultFilterChainMatchIsIgnoredWithAWarning() => AssertWarnings(
        """
        filter_chains:
        - {name: a, filter_chain_match: {transport_protocol: tls}}
        default_filter_chain: {name: fallback, filter_chain_match: {transport_protocol: raw_buffer}}
        """,
        "static_resources.listeners[0].default_filter_chain.filter_chain_match: ignored: the default filter chain serves the connections no filter chain matches (as in Envoy)");

    [Fact]
    public void AllErrorsOfAllChainsAreReportedAtOnce()
    {
        var (errors, _, matcher) = Problems("""
            filter_chains:
            - {name: a, filter_chain_match: {server_names: ["a.*"]}}
            - {name: b, filter_chain_match: {prefix_ranges: [{address_prefix: nope, prefix_len: 1}]}}
            - {name: c, filter_chain_match: {source_ports: [0]}}
            """);

        Assert.Equal(
            [
                "static_resources.listeners[0].filter_chains[0].filter_chain_match.server_names[0]: partial wildcards are not supported in \"server_names\": \"a.*\"; only a leading \"*.\" is, as in *.example.com",
                "static_resources.listeners[0].filter_chains[1].filter_chain_match.prefix_ranges[0].address_prefix: malformed IP address \"nope\": expected an IPv4 or IPv6 literal such as 10.0.0.0 or 2001:db8::",
                "static_resources.listeners[0].filter_chains[2].filter_chain_match.source_ports[0]: 0 is not a valid port (1-65535)",
            ],
            errors);
        Assert.Null(matcher);
    }
}
