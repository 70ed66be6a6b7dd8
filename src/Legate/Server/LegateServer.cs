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
    private readonly HashSet<Listener> _gracefulDrains = new(ReferenceEqualityComparer.Instance);
    private volatile bool _healthCheckFailed;
    private IDisposable? _runtimeWatch;
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
        TimeProvider time,
        AccessLog.AccessLogManager accessLogs,
        AccessLog.AccessLogInstance[] adminAccessLogs,
        Runtime.RuntimeLoader runtime)
    {
        Runtime = runtime;
        AccessLogs = accessLogs;
        AdminAccessLogs = adminAccessLogs;
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
        ManagerStats = new ManagerStats(stats, clusters, listeners, options.Concurrency);
    }

    /// <summary>The life state; a LIVE server whose health check was failed by the admin reports DRAINING, as Envoy.</summary>
    public ServerState State => _healthCheckFailed && _state == ServerState.Live ? ServerState.Draining : _state;

    /// <summary>The tracing providers (span reporters), flushed on shutdown.</summary>
    public Tracing.TracerManager? Tracers { get; private init; }

    /// <summary>The tap filters under admin control (<c>POST /tap</c>).</summary>
    public Legate.Extensions.Filters.Http.Tap.TapAdminRegistry Taps { get; private init; } = new();

    /// <summary>The periodic stats flush (histogram intervals, sinks).</summary>
    public StatsFlusher StatsFlusher { get; private init; } = null!;

    /// <summary>The runtime layers (static from the bootstrap, admin).</summary>
    public Runtime.RuntimeLoader Runtime { get; }

    public IReadOnlyList<Listener> ActiveListeners => Listeners.Listeners;

    public void SetHealthCheckFailed(bool failed)
    {
        _healthCheckFailed = failed;
        Listeners.HealthCheck.Set(failed);
        _log.Info(failed ? "health check failed by the admin" : "health check OK again by the admin");
        if (!failed)
        {
            return;
        }

        // Envoy drains connections of drain_type DEFAULT listeners while health check failed: every
        // response closes its connection (HTTP/1.1: connection: close) or starts its GOAWAY sequence
        // (HTTP/2), the listeners keep accepting. The connections open now drain at once too (idle
        // ones close), so that they leave without waiting for a request.
        var drainTime = Options.DrainTime < TimeSpan.FromDays(30) ? Options.DrainTime : TimeSpan.Zero;
        foreach (var listener in Listeners.Listeners)
        {
            if (listener.DrainsOnHealthCheckFail)
            {
                listener.DrainConnections(drainTime);
            }
        }
    }

    /// <summary>
    /// Stops accepting on the listeners (inbound only when asked: every listener that is not
    /// OUTBOUND). Graceful: existing connections are asked to close and get up to
    /// <c>--drain-time-s</c>; otherwise they get no grace period beyond their current request.
    /// Graceful with <paramref name="skipExit"/> (Envoy's <c>skip_exit</c>): the connections open now
    /// drain (within <c>--drain-time-s</c>) but the listeners are never stopped and keep serving.
    /// </summary>
    public void DrainListeners(bool inboundOnly, bool graceful, bool skipExit = false)
    {
        lock (_gracefulDrains)
        {
            DrainListenersLocked(inboundOnly, graceful, skipExit);
        }
    }

    private void DrainListenersLocked(bool inboundOnly, bool graceful, bool skipExit)
    {
        var configs = Bootstrap.StaticResources?.Listeners;
        var drainTime = graceful && Options.DrainTime < TimeSpan.FromDays(30) ? Options.DrainTime : TimeSpan.Zero;
        foreach (var listener in Listeners.Listeners)
        {
            var config = configs?.FirstOrDefault(l => l.Name == listener.Name);
            if (inboundOnly && config?.TrafficDirection == Envoy.Config.Core.V3.TrafficDirection.Outbound)
            {
                continue;
            }

            // Envoy ignores /drain_listeners?graceful while a graceful drain that covers the direction
            // runs (its drain manager is already draining): a listener in one is left alone, so a
            // repeated call changes nothing, and a drain of all after an inbound-only one adds the rest.
            if (graceful && !_gracefulDrains.Add(listener))
            {
                continue;
            }

            if (graceful && skipExit)
            {
                _log.Info($"draining the connections of listener '{listener.Name}' (skip_exit: it keeps accepting)");
                listener.DrainConnections(drainTime);
                continue;
            }

            _log.Info($"draining listener '{listener.Name}'{(graceful ? " gracefully" : string.Empty)}");
            var drain = new CancellationTokenSource(drainTime, Time);
            _ = listener.StopAsync(drain.Token, drain: true).ContinueWith(static (_, state) => ((CancellationTokenSource)state!).Dispose(), drain, TaskScheduler.Default);
        }
    }

    /// <summary>Secrets and the TLS certificates in use (for /certs).</summary>
    public Legate.Tls.SecretManager Secrets { get; private init; } = Legate.Tls.SecretManager.Empty;

    public CommandLineOptions Options { get; }

    public Bootstrap Bootstrap { get; }

    public DateTimeOffset ConfigLoadedAt { get; }

    public DateTimeOffset StartTime { get; }

    public TimeProvider Time { get; }

    public LogManager Logs { get; }

    public StatsStore Stats { get; }

    public ServerStats ServerStats { get; }

    /// <summary><c>cluster_manager.*</c> and <c>listener_manager.*</c>.</summary>
    public ManagerStats ManagerStats { get; }

    /// <summary>The access log files and their background writer.</summary>
    public AccessLog.AccessLogManager AccessLogs { get; }

    /// <summary>The admin's <c>access_log</c> (and <c>access_log_path</c>) loggers.</summary>
    public AccessLog.AccessLogInstance[] AdminAccessLogs { get; }

    /// <summary>Warnings of the loader and of compiling listeners: fields accepted but not acted on yet.</summary>
    public IReadOnlyList<ConfigError> Warnings { get; }

    /// <summary>The admin, once started; null when the bootstrap has none.</summary>
    public AdminServer? Admin { get; private set; }

    public ListenerManager Listeners { get; }

    public ClusterManager Clusters { get; }

    /// <summary>Streams that ended in a local reply or a reset, for the admin dashboard.</summary>
    public Legate.Http.RecentLocalReplies RecentLocalReplies { get; private init; } = new();

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
        }

        // stats_config.use_all_default_tags is a BoolValue: unset means true, as in Envoy.
        var stats = new StatsStore(StatsOptions.Compile(bootstrap.StatsConfig, errors));
        var xds = Legate.Xds.XdsManager.Create(bootstrap, errors, stats, logs, time);
        var secrets = new Legate.Tls.SecretManager(bootstrap.StaticResources?.Secrets, "static_resources.secrets", errors, logs.Get(LogComponents.Config), stats, sds: xds);
        var runtime = Legate.Runtime.RuntimeLoader.Create(bootstrap, errors, stats);
        var clusters = ClusterManager.Compile(bootstrap, errors, new ClusterFactoryContext
        {
            LocalCluster = bootstrap.ClusterManager is { LocalClusterName.Length: > 0 } clusterManager
                ? new LocalClusterSource(clusterManager.LocalClusterName, bootstrap.Node?.Locality)
                : null,
            Runtime = runtime,
            Eds = xds,
            Logger = logs.Get(LogComponents.Upstream),
            Stats = stats,
            TimeProvider = time,
            Secrets = secrets,
        });
        var recentLocalReplies = new Legate.Http.RecentLocalReplies();
        var flusher = StatsFlusher.Compile(bootstrap, errors, stats, clusters, logs);
        var accessLogs = new AccessLog.AccessLogManager(stats, logs.Get(LogComponents.File), options.FileFlushInterval);
        var adminAccessLogs = CompileAdminAccessLogs(bootstrap, errors, accessLogs, runtime);
        var tracers = new Tracing.TracerManager(clusters, stats, runtime, time, logs);
        var taps = new Legate.Extensions.Filters.Http.Tap.TapAdminRegistry();
        var context = new HttpFilterFactoryContext
        {
            ClusterManager = clusters, Stats = stats, Logs = logs, Time = time, AccessLogs = accessLogs, Runtime = runtime,
            LocalNode = bootstrap.Node ?? new(), RecentLocalReplies = recentLocalReplies, Secrets = secrets, Rds = xds, Ecds = xds,
            Tracers = tracers,
            Taps = taps,
        };
        var listeners = ListenerManager.Compile(bootstrap, errors, context, (int)Math.Min(options.Concurrency, 1024));
        xds.Attach(clusters, listeners, context, options.DrainTime);
        xds.AttachRuntime(runtime, errors);
        if (errors.Errors.Count > 0)
        {
            // Files opened for loggers that compiled are closed again, and secret file watchers stopped.
            accessLogs.DisposeAsync().AsTask().GetAwaiter().GetResult();
            secrets.Dispose();
        }

        errors.ThrowIfAny();

        var warnings = loaded.Warnings.Concat(errors.Warnings).Distinct().ToArray();
        return new LegateServer(options, bootstrap, time.GetUtcNow(), warnings, adminEndpoint, listeners, clusters, xds, stats, logs, time, accessLogs, adminAccessLogs, runtime)
        {
            StatsFlusher = flusher,
            Tracers = tracers,
            Taps = taps,
            RecentLocalReplies = recentLocalReplies,
            Secrets = secrets,
        };
    }

    /// <summary><c>admin.access_log</c>, plus the deprecated <c>access_log_path</c> (a file in Envoy's default format).</summary>
    private static AccessLog.AccessLogInstance[] CompileAdminAccessLogs(Bootstrap bootstrap, ConfigErrors errors, AccessLog.AccessLogManager manager, Runtime.RuntimeLoader runtime)
    {
        if (bootstrap.Admin is not { } admin)
        {
            return [];
        }

        var logs = new List<AccessLog.AccessLogInstance>(AccessLog.AccessLogFactory.Compile(admin.AccessLog, "admin.access_log", errors, manager, runtime));
#pragma warning disable CS0612 // access_log_path is deprecated, yet still honoured by Envoy.
        var path = admin.AccessLogPath;
#pragma warning restore CS0612
        if (path.Length > 0)
        {
            try
            {
                logs.Add(new AccessLog.AccessLogInstance(null, Http.Formatter.SubstitutionFormatter.Default, manager.GetOrOpen(path)));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                errors.Add("admin.access_log_path", $"cannot open access log file \"{path}\": {ex.Message}");
            }
        }

        return logs.ToArray();
    }

    /// <summary>Closes and reopens every access log file (SIGUSR1, <c>POST /reopen_logs</c>).</summary>
    public void ReopenLogs()
    {
        _log.Info("reopening access logs");
        AccessLogs.ReopenAll();
    }

    /// <summary>Starts the admin, then every listener; the server is LIVE when this returns.</summary>
    /// <exception cref="BindException">An address could not be bound; everything already started is stopped.</exception>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _log.Info($"initializing epoch {Options.RestartEpoch} (base id={Options.BaseId}, hot restart version={ServerInfoHandler.HotRestartVersion})");
        _log.Info($"legate version: {VersionInfo.Full}");
        _runtimeWatch = Runtime.WatchDiskLayers();
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
        AccessLogs.Start();
        StatsFlusher.Start();
        Tracers?.Start();
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
            await Xds.InitializeRuntimeAsync(cancellationToken).ConfigureAwait(false);
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
        ServerStats.OnLive();
        ManagerStats.OnWorkersStarted(Listeners.Listeners.Count);
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
                Taps.Stop();
                await Admin.StopAsync(drain.Token).ConfigureAwait(false);
            }
        }

        await DisposeAsync().ConfigureAwait(false);
        _log.Info("exiting");
    }

    public async ValueTask DisposeAsync()
    {
        _stopped = true;
        _runtimeWatch?.Dispose();
        await Xds.DisposeAsync().ConfigureAwait(false);
        await Listeners.DisposeAsync().ConfigureAwait(false);
        if (Tracers is { } tracers)
        {
            // The last spans go out through the collector's cluster, so before the clusters stop.
            await tracers.DisposeAsync().ConfigureAwait(false);
        }

        await Clusters.DisposeAsync().ConfigureAwait(false);
        Secrets.Dispose();
        if (Admin is { } admin)
        {
            Admin = null;
            await admin.DisposeAsync().ConfigureAwait(false);
        }

        await StatsFlusher.DisposeAsync().ConfigureAwait(false);

        // Last: what the listeners and the admin logged on the way out is written too.
        await AccessLogs.DisposeAsync().ConfigureAwait(false);
    }
}
