using Legate.Config;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Tests.Harness;
using static Legate.Tests.Tls.TlsTestConfigs;

namespace Legate.Tests.Network;

/// <summary>
/// A listener filter's <c>filter_disabled</c> (ListenerFilterChainMatchPredicate): where it matches
/// the connection the filter is skipped. Proven with proxy_protocol, whose effect is visible: run,
/// it closes a connection that sends no PROXY header; skipped, the request is served.
/// </summary>
public sealed class ListenerFilterDisabledTests : IDisposable
{
    private const string Request = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    private const string ProxyProtocol = "name: envoy.filters.listener.proxy_protocol, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol}";

    private readonly string _dir = Directory.CreateTempSubdirectory("legate-filter-disabled-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("{any_match: true}", true)]
    [InlineData("{destination_port_range: {start: 1, end: 65536}}", true)]
    [InlineData("{destination_port_range: {start: 1, end: 2}}", false)]
    [InlineData("{not_match: {destination_port_range: {start: 1, end: 2}}}", true)]
    [InlineData("{not_match: {any_match: true}}", false)]
    [InlineData("{and_match: {rules: [{any_match: true}, {destination_port_range: {start: 1, end: 2}}]}}", false)]
    [InlineData("{and_match: {rules: [{any_match: true}, {destination_port_range: {start: 1, end: 65536}}]}}", true)]
    [InlineData("{or_match: {rules: [{destination_port_range: {start: 1, end: 2}}, {any_match: true}]}}", true)]
    [InlineData("{or_match: {rules: [{destination_port_range: {start: 1, end: 2}}, {not_match: {any_match: true}}]}}", false)]
    public async Task AMatchingPredicateSkipsTheFilter(string predicate, bool skipped)
    {
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: $"listener_filters: [{{{ProxyProtocol}, filter_disabled: {predicate}}}]"));

        var response = await Tls.ListenerFilterTests.RawAsync(legate.ListenerEndpoint("tls"), Request);

        if (skipped)
        {
            Assert.EndsWith("tls ok", response);
            Assert.Equal(0, legate.Server.Stats.Counter("proxy_proto.not_found_disallowed").Value);
        }
        else
        {
            Assert.Equal(string.Empty, response);
            Assert.Equal(1, legate.Server.Stats.Counter("proxy_proto.not_found_disallowed").Value);
        }
    }

    /// <summary>
    /// The port range is half-open ([start, end)) and is read from the local address as the filters
    /// before left it: a first proxy_protocol announces destination port 80, and a second one,
    /// disabled on a range, is skipped only when 80 is inside it (otherwise it wants a second header
    /// and closes the connection).
    /// </summary>
    [Theory]
    [InlineData(80, 81, true)]
    [InlineData(79, 80, false)]
    [InlineData(81, 90, false)]
    public async Task ThePortRangeIsHalfOpenAndSeesTheRestoredDestination(int start, int end, bool skipped)
    {
        var filters = $"listener_filters: [{{{ProxyProtocol}}}, {{{ProxyProtocol}, filter_disabled: {{destination_port_range: {{start: {start}, end: {end}}}}}}}]";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(null), listenerExtra: filters));

        var response = await Tls.ListenerFilterTests.RawAsync(legate.ListenerEndpoint("tls"), Request, "PROXY TCP4 203.0.113.7 127.0.0.1 51000 80\r\n"u8.ToArray());

        if (skipped)
        {
            Assert.EndsWith("tls ok", response);
        }
        else
        {
            Assert.Equal(string.Empty, response);
        }

        Assert.Equal(1, legate.Server.Stats.Counter("proxy_proto.versions.v1.found").Value);
    }

    [Fact]
    public async Task FilterDisabledIsNoLongerWarnedAsIgnored()
    {
        await using var legate = await InProcessLegate.StartAsync(
            Bootstrap(Chain(null), listenerExtra: $"listener_filters: [{{{ProxyProtocol}, filter_disabled: {{any_match: true}}}}]"));

        Assert.DoesNotContain(legate.Logs.Lines, line => line.Contains("filter_disabled", StringComparison.Ordinal));
        Assert.EndsWith("tls ok", await Tls.ListenerFilterTests.RawAsync(legate.ListenerEndpoint("tls"), Request));
    }

    [Theory]
    [InlineData("{}", "filter_disabled.rule (line 9, col 182): exactly one of \"or_match\", \"and_match\", \"not_match\", \"any_match\", \"destination_port_range\" must be set")]
    [InlineData("{any_match: false}", "filter_disabled.any_match (line 9, col 211): value must equal true")]
    [InlineData("{and_match: {rules: [{any_match: true}]}}", "filter_disabled.and_match.rules (line 9, col 212): value must contain at least 2 item(s)")]
    public void AnInvalidPredicateIsAPreciseConfigError(string predicate, string expected)
    {
        var path = Path.Combine(_dir, "envoy.yaml");
        File.WriteAllText(path, Bootstrap(Chain(null), listenerExtra: $"listener_filters: [{{{ProxyProtocol}, filter_disabled: {predicate}}}]"));

        var error = Assert.Throws<ConfigException>(() =>
        {
            var options = CommandLineParser.Parse(["-c", path]);
            LegateServer.Create(options, BootstrapLoader.Load(path, null), LogManager.Create(options, new CapturingLogSink()));
        });

        Assert.Equal(["static_resources.listeners[0].listener_filters[0]." + expected], error.Errors.Select(e => e.ToString()).ToArray());
    }
}
