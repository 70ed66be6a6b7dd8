using System.Collections;
using System.Runtime.InteropServices;
using System.Text;

namespace Legate.Cli;

/// <summary>
/// Runtime settings that only the environment can give (not <c>legate.runtimeconfig.json</c>).
/// </summary>
internal static partial class RuntimeKnobs
{
    /// <summary>Tier-0 code is instrumented from the first call, so one round of calls reaches the final tier.</summary>
    public const string InstrumentOnlyHotCode = "DOTNET_TieredPGO_InstrumentOnlyHotCode";

    /// <summary>Set to 1 to start without the re-exec (the knob then stays as the environment has it).</summary>
    public const string NoReexec = "LEGATE_NO_REEXEC";

    /// <summary>
    /// When <see cref="InstrumentOnlyHotCode"/> is not in the environment, replaces this process
    /// with the same command line and the knob set to 0 (execve of <c>/proc/self/exe</c>: the
    /// process id, descriptors and arguments stay). Linux only; on any failure it returns and
    /// Legate starts with the runtime's default (slower to finish tiering, nothing else).
    /// </summary>
    public static void ReexecWithTieringKnobs()
    {
        if (!OperatingSystem.IsLinux()
            || Environment.GetEnvironmentVariable(InstrumentOnlyHotCode) is not null
            || Environment.GetEnvironmentVariable(NoReexec) is "1" or "true")
        {
            return;
        }

        string?[] argv;
        try
        {
            var raw = File.ReadAllBytes("/proc/self/cmdline");
            var parts = Encoding.UTF8.GetString(raw).TrimEnd('\0').Split('\0');
            if (parts.Length == 0 || parts[0].Length == 0)
            {
                return;
            }

            argv = [.. parts, null];
        }
        catch (IOException)
        {
            return;
        }
        catch (UnauthorizedAccessException)
        {
            return;
        }

        var environment = new List<string?>();
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            environment.Add($"{entry.Key}={entry.Value}");
        }

        environment.Add($"{InstrumentOnlyHotCode}=0");
        environment.Add(null);

        // Only returns when it failed (then nothing changed and Legate starts as it is).
        _ = Execve("/proc/self/exe", argv, [.. environment]);
    }

    [LibraryImport("libc", EntryPoint = "execve", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Execve(string path, string?[] argv, string?[] envp);
}
