using Legate.Tests.Harness;

namespace Legate.Tests.EndToEnd;

/// <summary><c>--mode validate</c> as a process: output, exit codes, and that nothing is bound.</summary>
public sealed class ValidateModeTests
{
    [Fact]
    public async Task ValidConfigPrintsOkAndExits0WithoutBinding()
    {
        // The listener's port is taken: validate must not try to bind it.
        using var busy = FreePort.Occupy();
        await using var legate = LegateProcess.StartWithConfig(TestConfigs.Simple(listenerPort: busy.Port), "--mode", "validate");

        Assert.Equal(0, await legate.WaitForExitAsync());
        var path = legate.Stdout.Lines.Single();
        Assert.Matches(@"^configuration '/.*legate-test-[0-9a-f]+\.yaml' OK$", path);
        Assert.DoesNotContain(legate.Stderr.Lines, l => l.Contains("listening", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DefaultConfigValidates()
    {
        await using var legate = LegateProcess.Start("--mode", "validate");

        Assert.Equal(0, await legate.WaitForExitAsync());
        Assert.Equal(["configuration '<built-in default config>' OK"], legate.Stdout.Lines);
    }

    [Fact]
    public async Task EveryErrorIsPrintedOnItsOwnLineAndExitIs1()
    {
        var yaml = """
            static_resources:
              listeners:
              - name: one
                address:
                  socket_address: { address: 999.0.0.1, port_value: 1 }
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: one
                      route_config: {}
              - name: two
                address:
                  socket_address: { address: localhost, port_value: 2 }
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: two
                      route_config: {}
            """;
        await using var legate = LegateProcess.StartWithConfig(yaml, "--mode", "validate");

        Assert.Equal(1, await legate.WaitForExitAsync());
        Assert.Empty(legate.Stdout.Lines);
        Assert.Equal(
        [
            "static_resources.listeners[0].address.socket_address.address (line 5, col 34): malformed IP address \"999.0.0.1\": a bound address must be an IPv4 or IPv6 literal",
            "static_resources.listeners[1].address.socket_address.address (line 15, col 34): malformed IP address \"localhost\": a bound address must be an IPv4 or IPv6 literal",
        ],
        legate.Stderr.Lines);
    }

    [Fact]
    public async Task UnreadableConfigIsAnErrorWithExit1()
    {
        await using var legate = LegateProcess.Start("--mode", "validate", "-c", "/nonexistent/legate.yaml");

        Assert.Equal(1, await legate.WaitForExitAsync());
        Assert.Contains("/nonexistent/legate.yaml", legate.Stderr.Text, StringComparison.Ordinal);
        Assert.Empty(legate.Stdout.Lines);
    }

    [Fact]
    public async Task WarningsGoToStderrPrefixed()
    {
        var yaml = TestConfigs.Admin() + """
            static_resources:
              listeners:
              - name: optional
                address:
                  socket_address: { address: 127.0.0.1, port_value: 0 }
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: optional
                      route_config: {}
                      http_filters:
                      - name: cors
                        is_optional: true
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors
                      - name: envoy.filters.http.router
            """;
        await using var legate = LegateProcess.StartWithConfig(yaml, "--mode", "validate");

        Assert.Equal(0, await legate.WaitForExitAsync());
        Assert.Equal(
            "warning: static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config (line 19, col 13): HTTP filter \"envoy.filters.http.cors\" (type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors) is not supported yet; it is marked is_optional, so it is skipped",
            Assert.Single(legate.Stderr.Lines));
        Assert.EndsWith("' OK", Assert.Single(legate.Stdout.Lines), StringComparison.Ordinal);
    }
}
