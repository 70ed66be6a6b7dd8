using Legate.Tests.Harness;

namespace Legate.Tests.Lint;

/// <summary><c>legate lint</c> and <c>--mode validate</c> through the real executable.</summary>
public sealed class LintCommandTests
{
    private static string Config(string admin) => $$"""
        admin:
          address: { socket_address: { address: {{admin}}, port_value: 0 } }
        static_resources:
          listeners:
          - name: web
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: web
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        direct_response: { status: 200 }
                      - name: never
                        match: { prefix: "/admin" }
                        direct_response: { status: 403 }
                  http_filters:
                  - name: envoy.filters.http.router
        """;

    [Fact]
    public async Task FindingsArePrintedAndOnlyStrictFails()
    {
        var path = Path.Combine(Path.GetTempPath(), $"legate-lint-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, Config("0.0.0.0"));
        try
        {
            await using (var lint = LegateProcess.Start("lint", "-c", path))
            {
                Assert.Equal(0, await lint.WaitForExitAsync());
                Assert.Contains(lint.Stdout.Lines, l => l.StartsWith("LGT005 admin.address.socket_address.address: ", StringComparison.Ordinal));
                Assert.Contains(lint.Stdout.Lines, l => l.StartsWith("LGT001 static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[1]: route [1] 'never'", StringComparison.Ordinal));
                Assert.EndsWith(": 2 finding(s)", lint.Stdout.Lines[^1], StringComparison.Ordinal);
            }

            await using (var strict = LegateProcess.Start("lint", "-c", path, "--strict"))
            {
                Assert.Equal(1, await strict.WaitForExitAsync());
            }

            await using (var validate = LegateProcess.Start("-c", path, "--mode", "validate"))
            {
                Assert.Equal(0, await validate.WaitForExitAsync());
                Assert.Contains(validate.Stderr.Lines, l => l.StartsWith("warning: lint LGT005 ", StringComparison.Ordinal));
                Assert.EndsWith("' OK", Assert.Single(validate.Stdout.Lines), StringComparison.Ordinal);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task ABadConfigIsAnErrorAndACleanOneHasNoFindings()
    {
        var path = Path.Combine(Path.GetTempPath(), $"legate-lint-{Guid.NewGuid():N}.yaml");
        var cleanYaml = string.Join("\n", Config("127.0.0.1").Split('\n').Where(l => !l.Contains("never", StringComparison.Ordinal) && !l.Contains("/admin", StringComparison.Ordinal) && !l.Contains("403", StringComparison.Ordinal)));
        await File.WriteAllTextAsync(path, cleanYaml);
        try
        {
            await using (var clean = LegateProcess.Start("lint", "-c", path, "--strict"))
            {
                Assert.Equal(0, await clean.WaitForExitAsync());
                Assert.EndsWith(": no findings", Assert.Single(clean.Stdout.Lines), StringComparison.Ordinal);
            }

            await using var missing = LegateProcess.Start("lint", "-c", "/nonexistent/legate.yaml");
            Assert.Equal(1, await missing.WaitForExitAsync());
        }
        finally
        {
            File.Delete(path);
        }
    }
}
