using Envoy.Config.Route.V3;
using Legate.Config;
using Legate.Tests.Harness;

namespace Legate.Tests.Compat;

/// <summary>
/// <c>legate lint</c> (the command) and the explain engine over every bootstrap of Envoy's sandbox
/// corpus that Legate validates: neither may throw, lint must exit 0, and both must print the same
/// thing when run again on a fresh load (no dictionary-order or hash-seed dependent output). Explain
/// is asked, for each listener, about every virtual host domain and every route's own path, so
/// every route and action of the corpus goes through it. Reported as skipped only when the corpus
/// (../shared) is absent.
/// </summary>
public sealed class EnvoyExamplesLintAndExplainTests
{
    private static IEnumerable<string> ValidatingBootstraps()
    {
        foreach (var line in File.ReadLines(Path.Combine(Repository.EnvoyExamples, "bootstraps.txt")))
        {
            var file = line.Trim();
            if (file.Length == 0 || file.StartsWith('#'))
            {
                continue;
            }

            try
            {
                BootstrapLoader.Load(Path.Combine(Repository.EnvoyExamples, file), null);
            }
            catch (ConfigException)
            {
                continue;
            }

            yield return file;
        }
    }

    [CorpusFact]
    public async Task LintCommandIsDeterministicOnEveryBootstrapThatValidates()
    {
        var linted = 0;
        foreach (var file in ValidatingBootstraps())
        {
            var path = Path.Combine(Repository.EnvoyExamples, file);
            var first = await RunAsync("lint", "-c", path);
            var second = await RunAsync("lint", "-c", path);

            Assert.True(first.Exit == 0, $"{file}: lint exited {first.Exit}: {first.Stderr}");
            Assert.Equal(string.Empty, first.Stderr);
            Assert.EndsWith("finding(s)" + Environment.NewLine, first.Stdout.Replace("no findings", "0 finding(s)", StringComparison.Ordinal), StringComparison.Ordinal);
            Assert.Equal(first, second);
            linted++;
        }

        Assert.True(linted >= 8, $"only {linted} sandbox bootstraps were linted");
    }

    [CorpusFact]
    public async Task ExplainIsDeterministicForEveryRouteOfEveryBootstrapThatValidates()
    {
        var explained = 0;
        foreach (var file in ValidatingBootstraps())
        {
            var path = Path.Combine(Repository.EnvoyExamples, file);
            var listeners = BootstrapLoader.Load(path, null).Bootstrap.StaticResources?.Listeners ?? [];
            foreach (var listener in listeners)
            {
                if (listener.Address?.SocketAddress is not { } socket)
                {
                    continue;
                }

                var target = listener.Name.Length > 0 ? new[] { "--listener", listener.Name } : ["--port", socket.PortValue.ToString(System.Globalization.CultureInfo.InvariantCulture)];
                foreach (var (authority, pathAndQuery) in Requests(listener))
                {
                    string[] args = ["-c", path, .. target, "GET", "http://" + authority + pathAndQuery];
                    Assert.True(Legate.Explain.ExplainCommand.TryParse(args, out var request, out var problem), $"{file}: {problem}");

                    // Two fresh loads: the output may depend on nothing but the configuration and the request.
                    var first = new List<string>();
                    var second = new List<string>();
                    var ok = Legate.Explain.ExplainCommand.Explain(BootstrapLoader.Load(path, null).Bootstrap.StaticResources.Listeners, request, first);
                    Legate.Explain.ExplainCommand.Explain(BootstrapLoader.Load(path, null).Bootstrap.StaticResources.Listeners, request, second);

                    Assert.True(ok, $"{file} {authority}{pathAndQuery}: {string.Join("\n", first)}");
                    Assert.StartsWith("listener:", first[0], StringComparison.Ordinal);
                    Assert.Equal(first, second);
                    explained++;
                }
            }

            // And the command itself, once per bootstrap; listeners from LDS cannot be explained offline, and it says so.
            var command = await RunAsync("explain", "-c", path, "GET", "/");
            if (listeners.Count > 0)
            {
                Assert.True(command.Exit == 0, $"{file}: explain exited {command.Exit}: {command.Stderr}");
            }
            else
            {
                Assert.Equal((1, string.Empty, "error: the configuration has no static listeners" + Environment.NewLine), command);
            }

            Assert.Equal(command, await RunAsync("explain", "-c", path, "GET", "/"));
        }

        Assert.True(explained >= 20, $"only {explained} requests were explained");
    }

    /// <summary>"/" on the listener's first domain, then each virtual host's domains and each of its routes' own paths.</summary>
    private static IEnumerable<(string Authority, string PathAndQuery)> Requests(Envoy.Config.Listener.V3.Listener listener)
    {
        yield return ("localhost", "/");
        foreach (var chain in listener.FilterChains)
        {
            var hcmAny = chain.Filters.Count > 0 ? chain.Filters[^1].TypedConfig : null;
            if (hcmAny is null || !hcmAny.Is(Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager.Descriptor))
            {
                continue;
            }

            var hcm = hcmAny.Unpack<Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager>();
            foreach (var virtualHost in hcm.RouteConfig?.VirtualHosts ?? [])
            {
                var authority = virtualHost.Domains.Count > 0 ? Concrete(virtualHost.Domains[0]) : "localhost";
                foreach (var domain in virtualHost.Domains)
                {
                    yield return (Concrete(domain), "/");
                }

                foreach (var route in virtualHost.Routes)
                {
                    if (RoutePath(route.Match) is { } routePath)
                    {
                        yield return (authority, routePath);
                    }
                }
            }
        }
    }

    private static string Concrete(string domain) => domain switch
    {
        "*" => "localhost",
        _ when domain.StartsWith('*') => "a" + domain[1..],
        _ when domain.EndsWith('*') => domain[..^1] + "com",
        _ => domain,
    };

    private static string? RoutePath(RouteMatch? match) => match?.PathSpecifierCase switch
    {
        RouteMatch.PathSpecifierOneofCase.Prefix => match.Prefix.StartsWith('/') ? match.Prefix + "?q=1" : "/" + match.Prefix,
        RouteMatch.PathSpecifierOneofCase.Path => match.Path,
        RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix => match.PathSeparatedPrefix + "/x",
        _ => null,
    };

    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var exit = await Legate.Server.MainCommon.RunAsync(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }
}
