using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;

namespace Legate.Tests.Harness;

/// <summary>
/// The real <c>legate</c> executable as a child process (<c>dotnet legate.dll …</c> from the test
/// output folder), with stdout and stderr captured line by line. Readiness is awaited on what the
/// process says (the admin address it logs) and on <c>/ready</c>, never on a fixed sleep. Killed
/// on dispose if still running.
/// </summary>
internal sealed class LegateProcess : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly List<string> _tempFiles;

    private LegateProcess(Process process, List<string> tempFiles)
    {
        _process = process;
        _tempFiles = tempFiles;
    }

    /// <summary>Where the test build put the executable (the test project references Legate.Cli).</summary>
    public static string LegateDll => Path.Combine(AppContext.BaseDirectory, "legate.dll");

    public LineBuffer Stdout { get; } = new();

    public LineBuffer Stderr { get; } = new();

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>A client that never uses a proxy from the environment.</summary>
    public HttpClient Http { get; } = TestHttp.CreateClient();

    /// <summary>Starts <c>legate</c> with exactly <paramref name="args"/>; does not wait for anything.</summary>
    public static LegateProcess Start(params string[] args) => Start(args, []);

    /// <summary>Writes <paramref name="yaml"/> to a temporary file and starts <c>legate -c file</c> plus <paramref name="args"/>.</summary>
    public static LegateProcess StartWithConfig(string yaml, params string[] args)
    {
        var path = WriteTempConfig(yaml);
        return Start(["-c", path, .. args], [path]);
    }

    /// <summary>Like <see cref="StartWithConfig"/>, with extra environment variables for the process.</summary>
    public static LegateProcess StartWithConfig(string yaml, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var path = WriteTempConfig(yaml);
        return Start(["-c", path, .. args], [path], environment);
    }

    /// <summary>Like <see cref="StartWithConfig"/>, run in <paramref name="workingDirectory"/> (for files a feature reads relative to it).</summary>
    public static LegateProcess StartWithConfigIn(string workingDirectory, string yaml, IReadOnlyDictionary<string, string>? environment = null)
    {
        var path = WriteTempConfig(yaml);
        return Start(["-c", path], [path], environment, workingDirectory);
    }

    /// <summary>Like <see cref="StartWithConfig"/>, then waits until the admin answers <c>/ready</c> with 200.</summary>
    public static Task<LegateProcess> StartServingAsync(string yaml, params string[] args) =>
        ServingAsync(StartWithConfig(yaml, args));

    /// <summary>
    /// Like <see cref="StartServingAsync"/>, started the way a shell without job control starts a
    /// background command: with SIGINT ignored (<c>trap '' INT</c>, then exec; same process id).
    /// </summary>
    public static Task<LegateProcess> StartServingWithSigintIgnoredAsync(string yaml)
    {
        var path = WriteTempConfig(yaml);
        return ServingAsync(Start(["-c", path], [path], sigintIgnored: true));
    }

    /// <summary>Waits until <paramref name="process"/> is ready; disposes it if it never is.</summary>
    private static async Task<LegateProcess> ServingAsync(LegateProcess process)
    {
        try
        {
            await process.WaitForReadyAsync();
            return process;
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>A temporary config file, deleted by the OS temp cleanup or by the process that created it.</summary>
    public static string WriteTempConfig(string yaml)
    {
        var path = Path.Combine(Path.GetTempPath(), $"legate-test-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    /// <summary>The admin base URI the process logged (<c>admin listening on http://…</c>).</summary>
    public async Task<Uri> WaitForAdminUriAsync(TimeSpan? timeout = null)
    {
        var match = await Stderr.WaitForAsync(@"admin listening on (http://\S+)", timeout ?? DefaultTimeout);
        return new Uri(match.Groups[1].Value + "/");
    }

    /// <summary>Waits until the admin's <c>/ready</c> answers 200 LIVE; returns the admin base URI.</summary>
    public async Task<Uri> WaitForReadyAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        var admin = await WaitForAdminUriAsync(timeout).WaitAsync(cts.Token);
        var delay = TimeSpan.FromMilliseconds(5);
        while (true)
        {
            if (HasExited)
            {
                throw new InvalidOperationException($"legate exited with {_process.ExitCode} before it was ready; stderr:\n{Stderr.Text}");
            }

            try
            {
                using var response = await Http.GetAsync(new Uri(admin, "ready"), cts.Token);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return admin;
                }
            }
            catch (HttpRequestException)
            {
                // Not accepting yet: poll again.
            }

            // Polling back-off, not synchronisation: the loop ends on the 200 or on the deadline.
            await Task.Delay(delay, cts.Token);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 100));
        }
    }

    /// <summary>The address listener <paramref name="name"/> logged it listens on.</summary>
    public async Task<IPEndPoint> WaitForListenerAsync(string name, TimeSpan? timeout = null)
    {
        var match = await Stderr.WaitForAsync($@"listener '{name}' listening on (\S+)", timeout ?? DefaultTimeout);
        return IPEndPoint.Parse(match.Groups[1].Value);
    }

    /// <summary>Waits for the process to exit (and its output to be read); returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan? timeout = null)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout ?? DefaultTimeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"legate did not exit within {timeout ?? DefaultTimeout}; stderr:\n{Stderr.Text}");
        }

        return _process.ExitCode;
    }

    /// <summary>Sends a POSIX signal (SIGTERM, SIGINT…) to the process.</summary>
    public void Signal(PosixSignal signal)
    {
        var number = signal switch
        {
            PosixSignal.SIGINT => 2,
            PosixSignal.SIGTERM => 15,
            PosixSignal.SIGHUP => 1,
            PosixSignal.SIGQUIT => 3,
            _ => throw new ArgumentOutOfRangeException(nameof(signal), signal, "unsupported signal"),
        };
        if (Kill(_process.Id, number) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {number}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        foreach (var file in _tempFiles)
        {
            File.Delete(file);
        }
    }

    private static LegateProcess Start(string[] args, List<string> tempFiles, IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null, bool sigintIgnored = false)
    {
        var info = new ProcessStartInfo(sigintIgnored ? "/bin/sh" : DotnetHost())
        {
            WorkingDirectory = workingDirectory ?? string.Empty,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        // As a user's shell would start it: the executable sets its runtime knobs itself
        // (RuntimeKnobs) unless a test sets them on purpose.
        info.Environment.Remove("DOTNET_TieredPGO_InstrumentOnlyHotCode");
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        if (sigintIgnored)
        {
            // An ignored signal stays ignored across exec.
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add("trap '' INT; exec \"$0\" \"$@\"");
            info.ArgumentList.Add(DotnetHost());
        }

        info.ArgumentList.Add(LegateDll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var legate = new LegateProcess(process, tempFiles);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                legate.Stdout.Complete();
            }
            else
            {
                legate.Stdout.Add(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                legate.Stderr.Complete();
            }
            else
            {
                legate.Stderr.Add(e.Data);
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return legate;
    }

    // The SDK tells test hosts which dotnet runs them; fall back to the one on PATH.
    private static string DotnetHost() => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
