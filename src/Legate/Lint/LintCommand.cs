using Legate.Config;

namespace Legate.Lint;

/// <summary>
/// <c>legate lint -c FILE [--strict]</c>: loads the configuration as <c>--mode validate</c> does,
/// then prints every lint finding (see <see cref="ConfigLinter"/>). Exit 0 with findings unless
/// <c>--strict</c>; 1 when the configuration does not load.
/// </summary>
internal static class LintCommand
{
    public const string Usage = "usage: legate lint -c FILE [--strict]";

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string? config = null;
        var strict = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "-c" or "--config-path" when i + 1 < args.Length:
                    config = args[++i];
                    break;
                case "--strict":
                    strict = true;
                    break;
                default:
                    await stderr.WriteLineAsync($"error: unexpected argument '{args[i]}'\n{Usage}").ConfigureAwait(false);
                    return 1;
            }
        }

        if (config is null)
        {
            await stderr.WriteLineAsync($"error: -c FILE is required\n{Usage}").ConfigureAwait(false);
            return 1;
        }

        LoadedBootstrap loaded;
        try
        {
            loaded = BootstrapLoader.Load(config, null);
        }
        catch (ConfigException ex)
        {
            foreach (var error in ex.Errors)
            {
                await stderr.WriteLineAsync(error.ToString()).ConfigureAwait(false);
            }

            return 1;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await stderr.WriteLineAsync($"error: cannot read '{config}': {ex.Message}").ConfigureAwait(false);
            return 1;
        }

        var findings = ConfigLinter.Lint(loaded.Bootstrap);
        foreach (var finding in findings)
        {
            await stdout.WriteLineAsync(finding.ToString()).ConfigureAwait(false);
        }

        await stdout.WriteLineAsync(findings.Count == 0 ? $"'{loaded.Source}': no findings" : $"'{loaded.Source}': {findings.Count} finding(s)").ConfigureAwait(false);
        return strict && findings.Count > 0 ? 1 : 0;
    }
}
