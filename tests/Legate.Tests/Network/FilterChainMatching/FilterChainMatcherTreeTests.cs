using System.Globalization;
using Legate.Tests.Harness;
using static Legate.Tests.Network.FilterChainMatching.ChainSelector;

namespace Legate.Tests.Network.FilterChainMatching;

/// <summary>
/// <c>filter_chain_matcher</c> (the unified matcher API) selecting filter chains by name: trees,
/// lists, predicates, IP ranges, nested matchers and <c>on_no_match</c>, Envoy's input formats,
/// the default chain when nothing (or an unknown name) is selected, and precise config errors.
/// </summary>
public sealed class FilterChainMatcherTreeTests
{
    private const string Chains = """
        filter_chains:
        - {name: web}
        - {name: api}
        - {name: internal}
        - {name: tls}
        default_filter_chain: {name: fallback}
        """;

    private static string Action(string chain) =>
        $$"""{ action: { name: chain, typed_config: { "@type": type.googleapis.com/google.protobuf.StringValue, value: {{chain}} } } }""";

    private static string Input(string type) =>
        $$"""{ name: input, typed_config: { "@type": type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.{{type}} } }""";

    [Fact]
    public void AnExactTreeOnTheDestinationPortWithANestedServerNameMatcher()
    {
        var selector = Compile(Chains + $$"""

            filter_chain_matcher:
              matcher_tree:
                input: {{Input("DestinationPortInput")}}
                exact_match_map:
                  map:
                    "80": {{Action("web")}}
                    "443":
                      matcher:
                        matcher_tree:
                          input: {{Input("ServerNameInput")}}
                          prefix_match_map:
                            map:
                              "api.": {{Action("api")}}
                              "": {{Action("tls")}}
            """);

        Assert.Equal("web", selector.Select(local: "10.0.0.1:80"));
        Assert.Equal("api", selector.Select(local: "10.0.0.1:443", sni: "api.example.com"));
        Assert.Equal("tls", selector.Select(local: "10.0.0.1:443", sni: "www.example.com"));

        // No server name: the server name input has no value, the nested tree finds nothing and
        // so does the outer one (no on_no_match): the default chain.
        Assert.Equal(Default, selector.Select(local: "10.0.0.1:443"));
        Assert.Equal(Default, selector.Select(local: "10.0.0.1:8080"));
    }

    [Fact]
    public void AListWithPredicatesAndOnNoMatch()
    {
        var selector = Compile(Chains + $$"""

            filter_chain_matcher:
              matcher_list:
                matchers:
                - predicate:
                    and_matcher:
                      predicate:
                      - single_predicate: { input: {{Input("TransportProtocolInput")}}, value_match: { exact: tls } }
                      - single_predicate: { input: {{Input("ApplicationProtocolInput")}}, value_match: { contains: "'h2'" } }
                  on_match: {{Action("api")}}
                - predicate:
                    or_matcher:
                      predicate:
                      - single_predicate:
                          input: {{Input("SourceIPInput")}}
                          custom_match:
                            name: ip
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.matching.input_matchers.ip.v3.Ip
                              cidr_ranges: [{ address_prefix: 10.0.0.0, prefix_len: 8 }]
                              stat_prefix: internal
                      - single_predicate: { input: {{Input("SourceTypeInput")}}, value_match: { exact: local } }
                  on_match: {{Action("internal")}}
                - predicate:
                    not_matcher:
                      single_predicate: { input: {{Input("TransportProtocolInput")}}, value_match: { exact: tls } }
                  on_match: {{Action("web")}}
              on_no_match: {{Action("tls")}}
            """);

        Assert.Equal("api", selector.Select(transport: "tls", alpn: ["h2", "http/1.1"]));
        Assert.Equal("tls", selector.Select(transport: "tls", alpn: ["http/1.1"]));
        Assert.Equal("internal", selector.Select(remote: "10.1.2.3:5000"));
        Assert.Equal("internal", selector.Select(local: "10.0.0.1:443", remote: "127.0.0.1:5000"));
        Assert.Equal("web", selector.Select(remote: "192.0.2.7:5000"));
    }

    [Fact]
    public void AnIpRangeTreeTakesTheLongestRangeAndExclusiveStopsThere()
    {
        var selector = Compile(Chains + $$"""

            filter_chain_matcher:
              matcher_tree:
                input: {{Input("DestinationIPInput")}}
                custom_match:
                  name: ip
                  typed_config:
                    "@type": type.googleapis.com/xds.type.matcher.v3.IPMatcher
                    range_matchers:
                    - ranges: [{ address_prefix: 10.0.0.0, prefix_len: 8 }]
                      on_match: {{Action("internal")}}
                    - ranges: [{ address_prefix: 10.1.0.0, prefix_len: 16 }]
                      on_match:
                        matcher:
                          matcher_tree:
                            input: {{Input("DestinationPortInput")}}
                            exact_match_map: { map: { "80": {{Action("web")}} } }
                    - ranges: [{ address_prefix: 10.2.0.0, prefix_len: 16 }]
                      exclusive: true
                      on_match:
                        matcher:
                          matcher_tree:
                            input: {{Input("DestinationPortInput")}}
                            exact_match_map: { map: { "80": {{Action("api")}} } }
            """);

        Assert.Equal("web", selector.Select(local: "10.1.0.5:80"));

        // The /16's nested matcher finds nothing for port 443: the /8 is tried next.
        Assert.Equal("internal", selector.Select(local: "10.1.0.5:443"));
        Assert.Equal("api", selector.Select(local: "10.2.0.5:80"));

        // Exclusive: the /8 is not consulted after the /16 found nothing.
        Assert.Equal(Default, selector.Select(local: "10.2.0.5:443"));
        Assert.Equal(Default, selector.Select(local: "192.168.0.1:80"));
    }

    [Fact]
    public void FilterChainMatchIsIgnoredAndAnUnknownChainNameFallsBackToTheDefault()
    {
        var (errors, warnings, matcher) = Problems($$"""
            filter_chains:
            - { name: web, filter_chain_match: { destination_port: 9999 } }
            filter_chain_matcher:
              matcher_tree:
                input: {{Input("DestinationPortInput")}}
                exact_match_map: { map: { "80": {{Action("web")}}, "81": {{Action("nope")}} } }
            """);

        Assert.Empty(errors);
        Assert.Equal(
        [
            $"{ListenerPath}.filter_chains[0].filter_chain_match: ignored: filter_chain_matcher selects the filter chains (as in Envoy)",
            $"{ListenerPath}.filter_chain_matcher.matcher_tree.exact_match_map.map.81.action.typed_config: no filter chain is named 'nope': a connection this selects gets the default filter chain, or is closed without one",
        ], warnings);
        Assert.Equal(0, matcher!.Match(Connection(local: "10.0.0.1:80")));
        Assert.Equal(Legate.Network.FilterChainMatching.FilterChainMatcher.NoMatch, matcher.Match(Connection(local: "10.0.0.1:81")));
    }

    [Theory]
    [InlineData("""
        filter_chain_matcher:
          matcher_tree:
            input: { name: i, typed_config: { "@type": type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.FilterStateInput, key: k } }
            exact_match_map: { map: {} }
        """, "filter_chain_matcher.matcher_tree.input.typed_config: input envoy.extensions.matching.common_inputs.network.v3.FilterStateInput is not supported for filter chains; supported: ")]
    [InlineData("""
        filter_chain_matcher:
          matcher_list:
            matchers:
            - predicate: { single_predicate: { input: { name: i, typed_config: { "@type": type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.ServerNameInput } }, value_match: { exact: a } } }
              on_match: { action: { name: a, typed_config: { "@type": type.googleapis.com/google.protobuf.UInt32Value, value: 1 } } }
        """, "filter_chain_matcher.matcher_list.matchers[0].on_match.action.typed_config: the action must be a google.protobuf.StringValue naming a filter chain, not google.protobuf.UInt32Value")]
    [InlineData("""
        filter_chain_matcher:
          matcher_tree:
            input: { name: i, typed_config: { "@type": type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.ServerNameInput } }
            custom_match: { name: ip, typed_config: { "@type": type.googleapis.com/xds.type.matcher.v3.IPMatcher, range_matchers: [] } }
        """, "filter_chain_matcher.matcher_tree.custom_match.typed_config: an IPMatcher needs an IP input (destination, source or direct source IP)")]
    public void UnsupportedShapesAreErrorsNamingTheField(string matcher, string expected)
    {
        var (errors, _, compiled) = Problems("filter_chains:\n- {name: a}\n" + matcher);

        Assert.Contains(errors, e => e.StartsWith($"{ListenerPath}.{expected}", StringComparison.Ordinal));
        Assert.Null(compiled);
    }

    [Fact]
    public void DuplicateChainNamesAreAnError()
    {
        var (errors, _, matcher) = Problems($$"""
            filter_chains:
            - {name: a}
            - {name: a}
            filter_chain_matcher:
              matcher_tree:
                input: {{Input("DestinationPortInput")}}
                exact_match_map: { map: { "80": {{Action("a")}} } }
            """);

        Assert.Equal([$"{ListenerPath}.filter_chains[1].name: filter chain name 'a' is used twice: filter_chain_matcher selects chains by their unique names"], errors);
        Assert.Null(matcher);
    }

    /// <summary>Through a real listener: the matcher picks the chain per connection by source address.</summary>
    [Fact]
    public async Task ARealListenerServesEachConnectionFromTheChainTheMatcherNames()
    {
        static string Chain(string name) => string.Join("\n", ChainLines(name).Split('\n').Select(line => "  " + line));
        static string ChainLines(string name) => $$"""
              - name: {{name}}
                filters:
                - name: envoy.filters.network.http_connection_manager
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                    stat_prefix: {{name}}
                    route_config: { virtual_hosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "{{name}}" } } }] }] }
                    http_filters: [{ name: envoy.filters.http.router, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } }]
            """;
        var yaml = TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: matched
                address: { socket_address: { address: 0.0.0.0, port_value: 0 } }
                filter_chains:
            {{Chain("loopback-two")}}
            {{Chain("others")}}
                filter_chain_matcher:
                  matcher_tree:
                    input: {{Input("SourceIPInput")}}
                    exact_match_map: { map: { "127.0.0.2": {{Action("loopback-two")}} } }
                  on_no_match: {{Action("others")}}
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);
        var port = legate.ListenerEndpoint("matched").Port.ToString(CultureInfo.InvariantCulture);

        Assert.Equal("loopback-two", await GetFromAsync("127.0.0.2", port));
        Assert.Equal("others", await GetFromAsync("127.0.0.1", port));
    }

    private static async Task<string> GetFromAsync(string source, string port)
    {
        using var client = new System.Net.Sockets.TcpClient();
        client.Client.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(source), 0));
        await client.ConnectAsync(System.Net.IPAddress.Loopback, int.Parse(port, CultureInfo.InvariantCulture));
        await using var connection = new RawHttpConnection(client.Client);
        await connection.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        return (await connection.ReadResponseAsync()).BodyText;
    }
}
