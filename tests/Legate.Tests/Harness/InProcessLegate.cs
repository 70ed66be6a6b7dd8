using System.Net;
using Legate.Config;
using Legate.Server;
using Legate.Server.Logging;

namespace Legate.Tests.Harness;

/// <summary>
/// Legate running inside the test process: a <see cref="LegateServer"/> built from a YAML string,
/// LIVE when <see cref="StartAsync(string, string[])"/> returns, with its log lines captured.
/// Use <c>port_value: 0</c> everywhere and read the bound ports back: safe for parallel tests.
/// </summary>
internal sealed class InProcessLegate : IAsyncDisposable
{
    private readonly LogManager _logs;

    private InProcessLegate(LegateServer server, LogManager logs, CapturingLogSink sink)
    {
        Server = server;
        _logs = logs;
        Logs = sink.Lines;
        Http = TestHttp.CreateClient();
    }

    public LegateServer Server { get; }

    /// <summary>Every log line the server wrote, in Envoy's layout.</summary>
    public LineBuffer Logs { get; }

    /// <summary>A client that never uses a proxy from the environment.</summary>
    public HttpClient Http { get; }

    /// <summary>e.g. <c>http://127.0.0.1:41234/</c>; throws when the config has no admin.</summary>
    public Uri AdminUri => new(Server.Admin?.BaseUri ?? throw new InvalidOperationException("this config has no admin"), "/");

    /// <summary>Starts Legate with <paramref name="yaml"/> as <c>--config-yaml</c> plus any other flags.</summary>
    public static Task<InProcessLegate> StartAsync(string yaml, params string[] args)
    {
        var options = CommandLineParser.Parse(["--config-yaml", yaml, .. args]);
        return StartAsync(options, BootstrapLoader.Load(options.ConfigPath, options.ConfigYaml));
    }

    /// <summary>Starts Legate with <paramref name="yaml"/> on a clock the test moves (outlier detection, health checks).</summary>
    public static Task<InProcessLegate> StartAsync(string yaml, TimeProvider time)
    {
        var options = CommandLineParser.Parse(["--config-yaml", yaml]);
        return StartAsync(options, BootstrapLoader.Load(options.ConfigPath, options.ConfigYaml), time);
    }

    /// <summary>Starts Legate with an already loaded bootstrap (e.g. the built-in demo with its ports changed).</summary>
    public static async Task<InProcessLegate> StartAsync(CommandLineOptions options, LoadedBootstrap loaded, TimeProvider? time = null)
    {
        var sink = new CapturingLogSink();
        var logs = LogManager.Create(options, sink);
        LegateServer? server = null;
        try
        {
            server = LegateServer.Create(options, loaded, logs, time);
            await server.StartAsync(CancellationToken.None);
            return new InProcessLegate(server, logs, sink);
        }
        catch
        {
            if (server is not null)
            {
                await server.DisposeAsync();
            }

            logs.Dispose();
            throw;
        }
    }

    /// <summary>A GET to listener <paramref name="listener"/> with extra request headers (added without validation).</summary>
    public async Task<HttpResponseMessage> GetAsync(string listener, string path, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, ListenerUri(listener, path));
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return await Http.SendAsync(request);
    }

    /// <summary>The address listener <paramref name="name"/> is bound to.</summary>
    public IPEndPoint ListenerEndpoint(string name) =>
        Server.Listeners.Find(name)?.BoundEndpoint ?? throw new InvalidOperationException($"no started listener named '{name}'");

    /// <summary>e.g. <c>http://127.0.0.1:41235/</c> for listener <paramref name="name"/>.</summary>
    public Uri ListenerUri(string name, string path = "/") => new(new Uri("http://" + Legate.Network.SocketAddresses.Format(ListenerEndpoint(name))), path);

    /// <summary>The value of counter <paramref name="name"/> (0 when never incremented).</summary>
    public long Counter(string name) => Server.Stats.Counter(name).Value;

    /// <summary>The value of gauge <paramref name="name"/>.</summary>
    public long Gauge(string name) => Server.Stats.Gauge(name, Legate.Stats.ImportMode.Accumulate).Value;

    /// <summary>Waits (polling, up to 30 s) until <paramref name="condition"/> holds; fails naming <paramref name="what"/>.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within 30 s: {what}");
            await Task.Delay(10);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.StopAsync();
        _logs.Dispose();
    }
}
