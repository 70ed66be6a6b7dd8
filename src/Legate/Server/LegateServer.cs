using System.Net;
using Envoy.Config.Bootstrap.V3;
using Legate.Admin;
using Legate.Config;
using Legate.Http;
using Legate.Network;
using Legate.Server.Logging;
using Legate.Stats;
using Legate.Upstream;
using ClusterManager = Legate.Upstream.ClusterManager;

namespace Legate.Server;

/// <summary>
/// One server instance: the admin and the listeners of a loaded bootstrap, and their life.
/// <see cref="Create"/> compiles everything without binding (all that <c>--mode validate</c>
/// needs), <see cref="StartAsync"/> starts the admin then the listeners, and a shutdown request
/// (SIGTERM, SIGINT, <c>/quitquitquit</c>) makes <see cref="RunAsync"/> stop accepting, let
/// in-flight requests finish, and return.
/// </summary>
internal sealed class LegateServer : IServerInstance, IAsyncDisposable
{
    private readonly TaskCompletionSource<string> _shutdownRequested = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Logger _log;
    private readonly IPEndPoint? _adminEndpoint;
    private volatile ServerState _state = ServerState.PreInitializing;
    private bool _stopped;

    private LegateServer(
        CommandLineOptions options,
        Bootstrap bootstrap,
        DateTimeOffset configLoadedAt,
        IReadOnlyList<ConfigError> warnings,
        IPEndPoint? adminEndpoint,
        ListenerManager listeners,
        ClusterManager clusters,
        Legate.Xds.XdsManager xds,
        StatsStore stats,
        LogManager logs,
        TimeProvider time)
    {
        Options = options;
        Bootstrap = bootstrap;
        ConfigLoadedAt = configLoadedAt;
        Warnings = warnings;
        _adminEndpoint = adminEndpoint;
        Listeners = listeners;
        Clusters = clusters;
        Xds = xds;
        Logs = logs;
        Time = time;
        StartTime = time.GetUtcNow();
        _log = logs.Get(LogComponents.Main);
        Stats = stats;
        ServerStats = new ServerStats(Stats, this);
    }

    public ServerState State => _state;

    public CommandLineOptions Options { get; }

    public Bootstrap Bootstrap { get; }

    public DateTimeOffset ConfigLoadedAt { get; }

    public DateTimeOffset StartTime { get; }

    public TimeProvider Time { get; }

    public LogManager Logs { get; }

    public StatsStore Stats { get; }

    public ServerStats ServerStats { get; }

    /// <summary>Warnings of the loader and of compiling listeners: fields accepted but not acted on yet.</summary>
    public IReadOnlyList<ConfigError> Warnings { get; }

    /// <summary>The admin, once started; null when the bootstrap has none.</summary>
    public AdminServer? Admin { get; private set; }

    public ListenerManager Listeners { get; }

    public ClusterManager Clusters { get; }

    /// <summary>The xDS client: dynamic resources (CDS, LDS) and the RDS/EDS sources static config names.</summary>
    public Legate.Xds.XdsManager Xds { get; }

    /// <summary>Completes with the reason when a shutdown is requested.</summary>
    public Task<string> ShutdownRequested => _shutdownRequested.Task;

    /// <summary>
    /// Applies command-line overrides to <paramref name="loaded"/> and compiles the admin and
    /// listeners. Nothing is bound.
    /// </summary>
    /// <exception cref="ConfigException">The configuration cannot be served; lists every problem.</exception>
    public static LegateServer Create(CommandLineOptions options, LoadedBootstrap loaded, LogManager logs, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        var bootstrap = BootstrapOverrides.Apply(loaded.Bootstrap, options);
        var errors = new ConfigErrors(loaded.SourceMap);
        IPEndPoint? adminEndpoint = null;
        if (bootstrap.Admin?.Address is { } adminAddress)
        {
            adminEndpoint = SocketAddresses.ToTcpEndpoint(adminAddress, "admin.address", errors);
#pragma warning disable CS0612 // access_log_path is deprecated, yet still honoured by Envoy and so worth a warning.
            var hasAccessLog = bootstrap.Admin.AccessLogPath.Length > 0 || bootstrap.Admin.AccessLog.Count > 0;
#pragma warning restore CS0612
            if (hasAccessLog)
            {
                errors.Warn("admin.access_log", "the admin access log is not implemented yet and is ignored");
            }
        }

        // stats_config.use_all_default_tags is a BoolValue: unset means true, as in Envoy.
        var stats = new StatsStore(bootstrap.StatsConfig?.UseAllDefaultTags ?? true);
        var xds = Legate.Xds.XdsManager.Create(bootstrap, errors, stats, logs, time);
        var clusters = ClusterManager.Compile(bootstrap, errors, new ClusterFactoryContext
        {
            Eds = xds,
            Logger = logs.Get(LogComponents.Upstream),
            Stats = stats,
            TimeProvider = time,
        });
        var context = new HttpFilterFactoryContext { ClusterManager = clusters, Stats = stats, Logs = logs, Time = time, LocalNode = bootstrap.Node ?? new(), Rds = xds };
        var listeners = ListenerManager.Compile(bootstrap, errors, context, (int)Math.Min(options.Concurrency, 1024));
        xds.Attach(clusters, listeners, context, options.DrainTime);
        errors.ThrowIfAny();

        var warnings = loaded.Warnings.Concat(errors.Warnings).Distinct().ToArray();
        return new LegateServer(options, bootstrap, time.GetUtcNow(), warnings, adminEndpoint, listeners, clusters, xds, stats, logs, time);
    }

    /// <summary>Starts the admin, then every listener; the server is LIVE when this returns.</summary>
    /// <exception cref="BindException">An address could not be bound; everything already started is stopped.</exception>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _log.Info($"initializing epoch {Options.RestartEpoch} (base id={Options.BaseId}, hot restart version={ServerInfoHandler.HotRestartVersion})");
        _log.Info($"legate version: {VersionInfo.Full}");
        if (Options.RestartEpoch > 0)
        {
            _log.Warn($"--restart-epoch {Options.RestartEpoch}: hot restart is not implemented; starting as a new server");
        }

        var config = Logs.Get(LogComponents.Config);
        foreach (var warning in Warnings)
        {
            config.Warn(warning.ToString());
        }

        config.Info($"loading {Listeners.Listeners.Count} listener(s)");
        _state = ServerState.Initializing;
        try
        {
            if (_adminEndpoint is not null)
            {
                var admin = new AdminServer(_adminEndpoint, this);
                try
                {
                    await admin.StartAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (BindException ex)
                {
                    await admin.DisposeAsync().ConfigureAwait(false);
                    throw new BindException($"admin: {ex.Message}", ex);
                }

                Admin = admin;
            }
            else
            {
                Logs.Get(LogComponents.Admin).Info("no admin address given, so no admin HTTP server started");
            }

            Logs.Get(LogComponents.Upstream).Info($"cm init: initializing {Clusters.Clusters.Length} cluster(s)");
            // xDS sources start first: static EDS clusters and RDS route tables warm from them.
            Xds.Start();
            await Clusters.InitializeAsync(cancellationToken).ConfigureAwait(false);
            if (Xds.HasDynamicResources)
            {
                // Envoy's init: listeners accept only after the first CDS and LDS responses (or initial_fetch_timeout).
                await Xds.InitializeAsync(cancellationToken).ConfigureAwait(false);
            }

            _log.Info("starting main dispatch loop");
            await Listeners.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // Never leave a half-started server behind: close whatever did start.
            await DisposeAsync().ConfigureAwait(false);
            throw;
        }

        _state = ServerState.Live;
        _log.Info("all dependencies initialized. starting workers");
    }

    public void RequestShutdown(string reason) => _shutdownRequested.TrySetResult(reason);

    /// <summary>Serves until a shutdown is requested (or <paramref name="cancellationToken"/> fires), then stops gracefully.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await StartAsync(cancellationToken).ConfigureAwait(false);
        using (cancellationToken.Register(() => RequestShutdown("cancelled")))
        {
            await ShutdownRequested.ConfigureAwait(false);
        }

        await StopAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Graceful stop: listeners stop accepting and in-flight requests get up to
    /// <c>--drain-time-s</c> to finish, then the admin closes. Idempotent.
    /// </summary>
    public async Task StopAsync()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        _state = ServerState.Draining;
        _log.Info($"shutting down server instance ({(ShutdownRequested.IsCompleted ? ShutdownRequested.Result : "stop")})");
        // CancellationTokenSource takes at most ~49 days; a longer drain time is as good as forever.
        var drainTime = Options.DrainTime < TimeSpan.FromDays(30) ? Options.DrainTime : TimeSpan.FromDays(30);
        using (var drain = new CancellationTokenSource(drainTime, Time))
        {
            await Listeners.StopAsync(drain.Token).ConfigureAwait(false);
            if (Admin is not null)
            {
                await Admin.StopAsync(drain.Token).ConfigureAwait(false);
            }
        }

        await DisposeAsync().ConfigureAwait(false);
        _log.Info("exiting");
    }

    public async ValueTask DisposeAsync()
    {
        _stopped = true;
        await Xds.DisposeAsync().ConfigureAwait(false);
        await Listeners.DisposeAsync().ConfigureAwait(false);
        await Clusters.DisposeAsync().ConfigureAwait(false);
        if (Admin is { } admin)
        {
            Admin = null;
            await admin.DisposeAsync().ConfigureAwait(false);
        }
    }
}
