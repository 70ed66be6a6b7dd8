using System.Diagnostics;
using Legate.Config;
using Legate.Tests.Harness;

namespace Legate.Tests.Compat;

/// <summary>
/// Every bootstrap of Envoy's official sandboxes either validates or fails only for reasons that
/// are listed: an extension Legate does not implement yet, or a file the corpus does not ship.
/// </summary>
public sealed class EnvoyExamplesTests
{
    private static IEnumerable<string> Bootstraps() =>
        File.ReadLines(Path.Combine(Repository.EnvoyExamples, "bootstraps.txt"))
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'));

    [CorpusFact]
    public void EveryBootstrapFailsOnlyForUnsupportedExtensionsOrMissingFiles()
    {
        var unexpected = new List<string>();
        var validated = 0;
        foreach (var file in Bootstraps())
        {
            try
            {
                BootstrapLoader.Load(Path.Combine(Repository.EnvoyExamples, file), null);
                validated++;
            }
            catch (ConfigException e)
            {
                unexpected.AddRange(e.Errors
                    .Where(error => !error.Message.Contains("is not supported yet", StringComparison.Ordinal)
                        && !error.Message.StartsWith("missing file ", StringComparison.Ordinal)
                        && !error.Message.StartsWith("unknown type URL \"type.googleapis.com/envoy.", StringComparison.Ordinal))
                    .Select(error => $"{file}: {error}"));
            }
        }

        Assert.Empty(unexpected);
        Assert.True(validated >= 8, $"only {validated} sandbox bootstraps validate; at least 8 did when this test was written");
    }

    [CorpusFact]
    public void ExplainWorksOnEveryBootstrapThatValidates()
    {
        var explained = 0;
        foreach (var file in Bootstraps())
        {
            LoadedBootstrap loaded;
            try
            {
                loaded = BootstrapLoader.Load(Path.Combine(Repository.EnvoyExamples, file), null);
            }
            catch (ConfigException)
            {
                continue;
            }

            var listeners = loaded.Bootstrap.StaticResources?.Listeners ?? [];
            if (listeners.Count == 0)
            {
                continue;
            }

            var lines = new List<string>();
            var request = new Legate.Explain.ExplainRequest(file, null, null, null, "GET", "localhost", "/", new Legate.Router.Matching.HeaderListLookup());

            Assert.True(Legate.Explain.ExplainCommand.Explain(listeners, request, lines), $"{file}: {string.Join("\n", lines)}");
            Assert.StartsWith("listener:", lines[0], StringComparison.Ordinal);
            // A tcp_proxy chain (tls-inspector, https-passthrough) has nothing to route: explain says so.
            Assert.Contains(lines, l => l.StartsWith("route:", StringComparison.Ordinal) || l.StartsWith("routes:", StringComparison.Ordinal) || l.StartsWith("virtual host:  none", StringComparison.Ordinal)
                || l.StartsWith("http:          the chain's terminal filter is not an HTTP connection manager", StringComparison.Ordinal));
            explained++;
        }

        Assert.True(explained >= 6, $"only {explained} sandbox bootstraps were explained");
    }

    [CorpusFact]
    public void LintRunsOnEveryBootstrap()
    {
        var linted = 0;
        foreach (var file in Bootstraps())
        {
            // Parsed only (no validation), so configs using extensions Legate lacks are linted too.
            var errors = new ConfigErrors();
            var document = ConfigDocument.Parse(File.ReadAllText(Path.Combine(Repository.EnvoyExamples, file)), file.EndsWith(".json", StringComparison.Ordinal) ? ConfigFormat.Json : ConfigFormat.Yaml);
            var bootstrap = new ProtoConverter(errors).Convert<Envoy.Config.Bootstrap.V3.Bootstrap>(document);
            var findings = Legate.Lint.ConfigLinter.Lint(bootstrap);
            Assert.All(findings, f => Assert.Matches("^LGT00[1-6]$", f.Code));
            linted++;
        }

        Assert.True(linted >= 60, $"only {linted} sandbox bootstraps were linted");
    }

    [CorpusFact]
    public async Task CompatScriptTableMatchesTheFeatureMatrix()
    {
        var legateDll = Path.Combine(AppContext.BaseDirectory, "legate.dll");
        var start = new ProcessStartInfo("bash", [Path.Combine(Repository.Root, "scripts", "compat.sh"), Repository.EnvoyExamples])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment = { ["LEGATE"] = $"dotnet {legateDll}" },
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var rows = (await stdout).Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal) && !l.StartsWith("| config", StringComparison.Ordinal) && !l.StartsWith("| ---", StringComparison.Ordinal)).ToArray();

        Assert.True(process.ExitCode == 0, $"compat.sh exited {process.ExitCode}: {await stderr}\n{await stdout}");
        Assert.Equal(Bootstraps().Count(), rows.Length);

        // docs/compatibility.md carries the same table: it must not go stale.
        var matrix = File.ReadAllText(Path.Combine(Repository.Root, "docs", "compatibility.md"));
        Assert.All(rows, row => Assert.Contains(row, matrix, StringComparison.Ordinal));
    }
}
