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
            "static_resources.listeners[0].address.socket_address.address: \"999.0.0.1\" is not a valid IPv4 or IPv6 address",
            "static_resources.listeners[1].address.socket_address.address: \"localhost\" is not a valid IPv4 or IPv6 address",
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
        var yaml = TestConfigs.Simple().Replace(
            "    filter_chains:\n",
            "    listener_filters:\n    - name: envoy.filters.listener.tls_inspector\n      typed_config:\n        \"@type\": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector\n    filter_chains:\n",
            StringComparison.Ordinal);
        await using var legate = LegateProcess.StartWithConfig(yaml, "--mode", "validate");

        Assert.Equal(0, await legate.WaitForExitAsync());
        Assert.Equal(
            "warning: static_resources.listeners[0].listener_filters[0]: listener filter 'envoy.filters.listener.tls_inspector' is not implemented yet and is skipped",
            Assert.Single(legate.Stderr.Lines));
        Assert.EndsWith("' OK", Assert.Single(legate.Stdout.Lines), StringComparison.Ordinal);
    }
}
