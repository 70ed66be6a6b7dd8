using System.Net;
using Envoy.Config.Bootstrap.V3;
using Envoy.Config.Core.V3;
using Legate.Config;
using Legate.Http;
using Legate.Network;
using Legate.Server.Logging;
using Legate.Stats;
using Legate.Upstream;
using ClusterManager = Legate.Upstream.ClusterManager;
using Rds = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.Rds;

namespace Legate.Xds;

/// <summary>
/// The server's xDS client (Envoy's XdsManager + the dynamic parts of the cluster and listener
/// managers): resolves config sources, owns one stream per gRPC source (all ADS users share
/// one) and one watcher per file, and the CDS/LDS APIs and RDS/EDS dispatchers that apply what
/// arrives. <see cref="InitializeAsync"/> is Envoy's init sequence: CDS first (its clusters
/// warmed), then LDS (its listeners warmed), each bounded by initial_fetch_timeout.
/// </summary>
internal sealed class XdsManager : IEdsSource, IRdsSource, IEcdsSource, Legate.Tls.ISdsSource, IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly Bootstrap _bootstrap;
    private readonly StatsStore _stats;
    private readonly LogManager _logs;
    private readonly Logger _log;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, XdsGrpcStream> _streams = new(StringComparer.Ordinal);
    private readonly Dictionary<string, XdsFileSource> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, XdsRestSource> _rest = new(StringComparer.Ordinal);
    private readonly Dictionary<string, XdsSubscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly XdsSourceSpec? _cdsSource;
    private readonly XdsSourceSpec? _ldsSource;
    private ClusterManager? _clusters;
    private ListenerManager? _listeners;
    private HttpFilterFactoryContext? _httpContext;
    private TimeSpan _drainTime = TimeSpan.FromMinutes(10);
    private bool _started;
    private bool _disposed;

    private XdsManager(Bootstrap bootstrap, XdsSourceSpec? cds, XdsSourceSpec? lds, StatsStore stats, LogManager logs, TimeProvider time)
    {
        _bootstrap = bootstrap;
        _cdsSource = cds;
        _ldsSource = lds;
        _stats = stats;
        _logs = logs;
        _log = logs.Get(LogComponents.Config);
        _time = time;
        ControlPlane = new ControlPlaneStats(stats);
        Validator = new XdsResourceValidator(() => new HashSet<string>(_clusters?.Clusters.Select(c => c.Name) ?? [], StringComparer.Ordinal));
    }

    public ControlPlaneStats ControlPlane { get; }

    public XdsResourceValidator Validator { get; }

    /// <summary>True when the bootstrap asks for CDS or LDS (the server then waits for them before serving).</summary>
    public bool HasDynamicResources => _cdsSource is not null || _ldsSource is not null;

    /// <summary>Whether anything is dynamic: CDS/LDS, or an EDS cluster or RDS route table in the static config.</summary>
    public bool IsActive => HasDynamicResources || Subscriptions.Count > 0;

    public CdsApi? Cds { get; private set; }

    public LdsApi? Lds { get; private set; }

    /// <summary>Every subscription, for config_dump and tests.</summary>
    public IReadOnlyList<XdsSubscription> Subscriptions
    {
        get
        {
            lock (_lock)
            {
                return _subscriptions.Values.ToArray();
            }
        }
    }

    /// <summary>The gRPC streams by source key (tests watch reconnects).</summary>
    public IReadOnlyList<XdsGrpcStream> Streams
    {
        get
        {
            lock (_lock)
            {
                return _streams.Values.ToArray();
            }
        }
    }

    public IEnumerable<RdsRouteConfigProvider> RouteProviders => Subscriptions.Select(s => s.Handler).OfType<RdsDispatcher>().SelectMany(d => d.Providers);

    /// <summary>The secrets asked for over xDS (every SDS source), for config_dump.</summary>
    public IEnumerable<SdsDispatcher.Entry> Secrets => Subscriptions.Select(s => s.Handler).OfType<SdsDispatcher>().SelectMany(d => d.Entries);

    public XdsSubscription? Find(XdsResourceType type) => Subscriptions.FirstOrDefault(s => s.Type == type);

    /// <summary>Checks <c>dynamic_resources</c> (errors with field paths); nothing starts.</summary>
    public static XdsManager Create(Bootstrap bootstrap, ConfigErrors errors, StatsStore stats, LogManager logs, TimeProvider time)
    {
        XdsSourceSpec? cds = null, lds = null;
        if (bootstrap.DynamicResources is { } dynamic)
        {
            if (dynamic.AdsConfig is { } ads)
            {
                // Checked here even when nothing uses ads, as Envoy does.
                XdsSourceSpec.Resolve(new ConfigSource { Ads = new AggregatedConfigSource() }, "dynamic_resources", bootstrap, errors);
                _ = ads;
            }

            if (dynamic.CdsConfig is { } cdsConfig)
            {
                cds = XdsSourceSpec.Resolve(cdsConfig, "dynamic_resources.cds_config", bootstrap, errors);
            }

            if (dynamic.LdsConfig is { } ldsConfig)
            {
                lds = XdsSourceSpec.Resolve(ldsConfig, "dynamic_resources.lds_config", bootstrap, errors);
            }

            if (dynamic.CdsResourcesLocator.Length > 0 || dynamic.LdsResourcesLocator.Length > 0)
            {
                errors.Add("dynamic_resources", "xDS-TP resource locators (cds_resources_locator, lds_resources_locator) are not supported yet");
            }
        }

        return new XdsManager(bootstrap, cds, lds, stats, logs, time);
    }

    /// <summary>Connects the manager to what it updates (after the static clusters and listeners are compiled).</summary>
    public void Attach(ClusterManager clusters, ListenerManager listeners, HttpFilterFactoryContext httpContext, TimeSpan drainTime)
    {
        _clusters = clusters;
        _listeners = listeners;
        _httpContext = httpContext;
        _drainTime = drainTime;
    }

    /// <summary>Starts the sources used so far (static EDS clusters and RDS users need them before they can warm).</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_started)
            {
                return;
            }

            _started = true;
        }

        foreach (var stream in Streams)
        {
            stream.Start();
        }

        foreach (var file in FilesSnapshot())
        {
            file.Start();
        }

        foreach (var rest in RestSnapshot())
        {
            rest.Start();
        }
    }

    /// <summary>Subscribes CDS, then LDS; completes when both are initialized (Envoy's init).</summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        Start();

        if (_cdsSource is not null)
        {
            Cds = new CdsApi(_clusters!, _stats, _logs.Get(LogComponents.Upstream));
            var subscription = Subscribe(XdsResourceType.Cluster, _cdsSource, Cds, new XdsStats(_stats, "cluster_manager.cds."));
            _log.Info("cds: waiting for the initial response");
            await subscription.Initialized.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (subscription.HasAccepted)
            {
                // A rejected first response ends the wait without anything to warm (Envoy's init goes on).
                await Cds.FirstWarm.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        if (_ldsSource is not null)
        {
            Lds = new LdsApi(_listeners!, () => _httpContext!, _drainTime, _stats, _logs.Get(LogComponents.Listener));
            var subscription = Subscribe(XdsResourceType.Listener, _ldsSource, Lds, new XdsStats(_stats, "listener_manager.lds."));
            _log.Info("lds: waiting for the initial response");
            await subscription.Initialized.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (subscription.HasAccepted)
            {
                await Lds.FirstWarm.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Subscribes the runtime's <c>rtds_layer</c>s (their sources start with the others); errors name the layer's field path.</summary>
    public void AttachRuntime(Legate.Runtime.RuntimeLoader runtime, ConfigErrors errors)
    {
        foreach (var layer in runtime.RtdsLayers)
        {
            var spec = XdsSourceSpec.Resolve(layer.Source, FieldPath.Field(layer.Path, "rtds_config"), _bootstrap, errors);
            if (spec is null)
            {
                continue;
            }

            var dispatcher = (RtdsDispatcher)GetOrSubscribe(XdsResourceType.Runtime, spec, () =>
            {
                var handler = new RtdsDispatcher(runtime);
                // Envoy's RTDS subscription stats live in the runtime scope: runtime.update_success, ...
                return (handler, new XdsStats(_stats, "runtime."), s => handler.Subscription = s);
            }).Handler;
            dispatcher.Add(layer);
        }
    }

    /// <summary>Envoy's init runs RTDS after the primary (static) clusters and before CDS: completes when every RTDS subscription has its first response (or its initial_fetch_timeout).</summary>
    public Task InitializeRuntimeAsync(CancellationToken cancellationToken)
    {
        var runtime = Subscriptions.Where(s => s.Type == XdsResourceType.Runtime).Select(s => s.Initialized).ToArray();
        return runtime.Length == 0 ? Task.CompletedTask : Task.WhenAll(runtime).WaitAsync(cancellationToken);
    }

    public IEdsWatch? CreateWatch(string serviceName, ConfigSource? source, string path, ConfigErrors errors)
    {
        var spec = XdsSourceSpec.Resolve(source, path, _bootstrap, errors);
        if (spec is null)
        {
            return null;
        }

        var dispatcher = (EdsDispatcher)GetOrSubscribe(XdsResourceType.Endpoint, spec, () =>
        {
            var handler = new EdsDispatcher(_stats, _time, () => _clusters);
            return (handler, new XdsStats(_stats, "cluster_manager.eds."), s => handler.Subscription = s);
        }).Handler;
        return dispatcher.CreateWatch(serviceName);
    }

    public RdsRouteConfigProvider? GetProvider(Rds rds, string statPrefix, string path, ConfigErrors errors)
    {
        var spec = XdsSourceSpec.Resolve(rds.ConfigSource, FieldPath.Field(path, "config_source"), _bootstrap, errors);
        if (spec is null)
        {
            return null;
        }

        var dispatcher = (RdsDispatcher)GetOrSubscribe(XdsResourceType.RouteConfiguration, spec, () =>
        {
            var handler = new RdsDispatcher(_stats, _time);
            return (handler, new XdsStats(_stats, "http.rds."), s => handler.Subscription = s);
        }).Handler;
        return dispatcher.GetProvider(rds.RouteConfigName, statPrefix);
    }

    /// <summary>The filter configurations asked for over ECDS (every source), for config_dump.</summary>
    public IEnumerable<EcdsDispatcher.Entry> ExtensionConfigs => Subscriptions.Select(s => s.Handler).OfType<EcdsDispatcher>().SelectMany(d => d.Entries);

    public HttpFilterFactory? CreateDiscoveredFilter(Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpFilter filter, string path, ConfigErrors errors, HttpFilterFactoryContext context)
    {
        var discovery = filter.ConfigDiscovery;
        var discoveryPath = FieldPath.Field(path, "config_discovery");
        var spec = XdsSourceSpec.Resolve(discovery.ConfigSource, FieldPath.Field(discoveryPath, "config_source"), _bootstrap, errors);
        HttpFilterFactory? defaultFactory = null;
        if (discovery.DefaultConfig is { } defaultConfig)
        {
            var defaultPath = FieldPath.Field(discoveryPath, "default_config");
            if (!discovery.TypeUrls.Contains(defaultConfig.TypeUrl))
            {
                errors.Add(defaultPath, $"the default_config's type {defaultConfig.TypeUrl} is not one of type_urls");
                return null;
            }

            defaultFactory = HttpFilterRegistry.Compile(new Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpFilter { Name = filter.Name, TypedConfig = defaultConfig }, defaultPath, errors, context);
            if (defaultFactory?.IsTerminal == true)
            {
                errors.Add(defaultPath, "a terminal filter cannot be configured through discovery here: it must be the last HTTP filter, configured statically");
            }
        }

        if (spec is null || errors.HasErrors)
        {
            defaultFactory?.Release();
            return null;
        }

        var dispatcher = (EcdsDispatcher)GetOrSubscribe(XdsResourceType.ExtensionConfig, spec, () =>
        {
            var handler = new EcdsDispatcher(_stats, _time);
            return (handler, new XdsStats(_stats, "extension_config_discovery."), s => handler.Subscription = s);
        }).Handler;
        var discovered = new DiscoveredHttpFilterFactory(filter.Name, discovery, defaultFactory, context, FieldPath.Field(path, "typed_config"));
        dispatcher.Watch(filter.Name, discovered);
        return discovered;
    }

    public Action? Subscribe(ConfigSource source, string path, Legate.Tls.ISdsSecretSubscriber subscriber, ConfigErrors errors)
    {
        var spec = XdsSourceSpec.Resolve(source, path, _bootstrap, errors);
        if (spec is null)
        {
            return null;
        }

        var dispatcher = (SdsDispatcher)GetOrSubscribe(XdsResourceType.Secret, spec, () =>
        {
            var handler = new SdsDispatcher(_stats, _time);
            // Envoy counts SDS per secret (sds.<name>.*); the subscription's own counters sit beside them.
            return (handler, new XdsStats(_stats, "sds."), s => handler.Subscription = s);
        }).Handler;
        dispatcher.Add(subscriber);
        return () => dispatcher.Remove(subscriber);
    }

    public async ValueTask DisposeAsync()
    {
        XdsGrpcStream[] streams;
        XdsFileSource[] files;
        XdsRestSource[] rest;
        lock (_lock)
        {
            _disposed = true;
            streams = _streams.Values.ToArray();
            files = _files.Values.ToArray();
            rest = _rest.Values.ToArray();
        }

        foreach (var source in rest)
        {
            source.Dispose();
        }

        foreach (var file in files)
        {
            file.Dispose();
        }

        foreach (var stream in streams)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    private XdsRestSource[] RestSnapshot()
    {
        lock (_lock)
        {
            return _rest.Values.ToArray();
        }
    }

    private XdsFileSource[] FilesSnapshot()
    {
        lock (_lock)
        {
            return _files.Values.ToArray();
        }
    }

    private XdsSubscription Subscribe(XdsResourceType type, XdsSourceSpec spec, IXdsUpdateHandler handler, XdsStats stats) =>
        GetOrSubscribe(type, spec, () => (handler, stats, _ => { }));

    /// <summary>The subscription of <paramref name="type"/> on <paramref name="spec"/>'s source, created (and its source started) on first use.</summary>
    private XdsSubscription GetOrSubscribe(XdsResourceType type, XdsSourceSpec spec, Func<(IXdsUpdateHandler Handler, XdsStats Stats, Action<XdsSubscription> Bind)> create)
    {
        var key = type.ShortName + "|" + spec.Key;
        XdsSubscription subscription;
        XdsGrpcStream? stream = null;
        XdsFileSource? file = null;
        XdsRestSource? rest = null;
        bool start;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_subscriptions.TryGetValue(key, out var existing))
            {
                return existing;
            }

            var (handler, stats, bind) = create();
            subscription = new XdsSubscription(type, spec, handler, stats, Validator, _time, _log);
            bind(subscription);
            _subscriptions.Add(key, subscription);
            start = _started;
            if (spec.Kind == XdsSourceKind.Path)
            {
                file = new XdsFileSource(spec, subscription, _stats, _log);
                _files.Add(key, file);
            }
            else if (spec.Kind == XdsSourceKind.Rest)
            {
                rest = new XdsRestSource(spec, subscription, LocalNode(), ct => ResolveAsync(spec.ClusterName, ct), () => ControlPlaneTls(spec.ClusterName), _stats, _logs.Get(LogComponents.Config));
                _rest.Add(key, rest);
            }
            else
            {
                // ADS: one stream for every type; per-type gRPC sources: one stream per type and cluster.
                var streamKey = spec.Kind == XdsSourceKind.Ads ? spec.Key : spec.Key + "|" + type.ShortName;
                if (!_streams.TryGetValue(streamKey, out stream))
                {
                    stream = new XdsGrpcStream(spec, LocalNode(), ct => ResolveAsync(spec.ClusterName, ct), RetryBackOff(spec.ClusterName), ControlPlane, _time, max => Random.Shared.NextInt64(Math.Max(1, max)), _logs.Get(LogComponents.Config), () => ControlPlaneTls(spec.ClusterName));
                    _streams.Add(streamKey, stream);
                }
            }
        }

        if (stream is not null)
        {
            stream.Add(subscription);
            if (start)
            {
                stream.Start();
            }
        }
        else if (file is not null && start)
        {
            file.Start();
        }
        else if (rest is not null && start)
        {
            rest.Start();
        }

        return subscription;
    }

    private Node LocalNode()
    {
        var node = _bootstrap.Node?.Clone() ?? new Node();
        node.UserAgentName = "legate";
        node.UserAgentVersion = Legate.Server.VersionInfo.Version;
        return node;
    }

    private BackoffStrategy? RetryBackOff(string clusterName)
    {
        foreach (var source in new[] { _bootstrap.DynamicResources?.AdsConfig, _bootstrap.DynamicResources?.CdsConfig?.ApiConfigSource, _bootstrap.DynamicResources?.LdsConfig?.ApiConfigSource })
        {
            if (source?.GrpcServices.FirstOrDefault(g => g.EnvoyGrpc?.ClusterName == clusterName)?.RetryPolicy?.RetryBackOff is { } backOff)
            {
                return backOff;
            }
        }

        return null;
    }

    /// <summary>The control plane cluster's UpstreamTlsContext (its <c>transport_socket</c>), or null for cleartext h2c.</summary>
    private Legate.Tls.ClientTlsContext? ControlPlaneTls(string clusterName) => _clusters?.Find(clusterName)?.Info.Tls;

    /// <summary>A host of the control plane's (static) cluster, chosen by its load balancer.</summary>
    private ValueTask<EndPoint> ResolveAsync(string clusterName, CancellationToken cancellationToken)
    {
        var cluster = _clusters?.Find(clusterName) ?? throw new InvalidOperationException($"the xDS cluster '{clusterName}' does not exist");
        var host = cluster.LoadBalancer.ChooseHost(null) ?? throw new InvalidOperationException($"the xDS cluster '{clusterName}' has no healthy host");
        return ValueTask.FromResult<EndPoint>(host.Address);
    }
}
