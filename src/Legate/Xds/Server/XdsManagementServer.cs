using System.Globalization;
using System.Net;
using Envoy.Service.Discovery.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Grpc;
using Legate.Server.Logging;

namespace Legate.Xds.Server;

/// <summary>
/// The bundled management server (<c>legate xds-server</c>): serves the resources of a directory
/// over ADS (state of the world and Delta) and the per-type discovery services, on cleartext
/// HTTP/2 or, given a certificate, h2 over TLS. A change in the directory makes a new version of each type that changed, pushed to
/// every client subscribed to it. Each client's ACK and NACK is logged with its node id. Given a
/// REST address, it also answers Envoy's REST-JSON polling there (HTTP/1.1, see
/// <see cref="RestDiscoveryHandler"/>).
/// </summary>
internal sealed class XdsManagementServer : IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly ResourceDirectory _directory;
    private readonly Logger _log;
    private readonly GrpcServer _server;
    private readonly Legate.Network.KestrelListener? _rest;
    private readonly RestDiscoveryHandler _restHandler;
    private readonly List<ClientStream> _clients = new();
    private readonly Dictionary<XdsResourceType, ServedResources> _snapshot = new();
    private readonly string _path;
    private FileSystemWatcher? _watcher;
    private Timer? _debounce;
    private int _nonce;

    /// <param name="certificate">Serve over TLS (h2, ALPN h2) with this certificate and key; null: cleartext h2c.</param>
    /// <param name="restListen">Where to answer REST-JSON discovery requests (cleartext HTTP/1.1); null: no REST.</param>
    public XdsManagementServer(string directory, IPEndPoint listen, Logger log, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null, IPEndPoint? restListen = null)
    {
        _path = directory;
        _directory = new ResourceDirectory(directory, log);
        _log = log;
        _server = new GrpcServer(listen, log, certificate);
        _server.Map(XdsResourceType.AdsSotwMethod, call => ServeAsync(call, delta: false, only: null));
        _server.Map(XdsResourceType.AdsDeltaMethod, call => ServeAsync(call, delta: true, only: null));
        foreach (var type in XdsResourceType.All)
        {
            _server.Map(type.SotwMethod, call => ServeAsync(call, delta: false, only: type));
            _server.Map(type.DeltaMethod, call => ServeAsync(call, delta: true, only: type));
        }

        _restHandler = new RestDiscoveryHandler(
            type =>
            {
                var state = StateOf(type);
                return (state.Version, state.Resources);
            },
            NextNonce,
            log);
        if (restListen is not null)
        {
            _rest = new Legate.Network.KestrelListener(restListen, Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1, ioQueueCount: 1, log);
        }
    }

    public IPEndPoint BoundEndpoint => _server.BoundEndpoint;

    /// <summary>The bound REST address, when REST is served.</summary>
    public IPEndPoint? RestEndpoint => _rest?.BoundEndpoint;

    /// <summary>
    /// Raised by <see cref="Reload"/> once the directory is parsed and before the changed types are
    /// pushed (the benchmark's clock for push → applied starts here, not after the reload returns:
    /// the push is written inside it, and the client may be done before it returns).
    /// </summary>
    public event Action? Pushing;

    /// <summary>The current version of <paramref name="type"/> (incremented on every change).</summary>
    public int VersionOf(XdsResourceType type)
    {
        lock (_lock)
        {
            return _snapshot.TryGetValue(type, out var entry) ? entry.Version : 0;
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Reload();
        _watcher = new FileSystemWatcher(_path) { NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size };
        FileSystemEventHandler changed = (_, _) => _debounce?.Change(TimeSpan.FromMilliseconds(100), System.Threading.Timeout.InfiniteTimeSpan);
        _watcher.Changed += changed;
        _watcher.Created += changed;
        _watcher.Deleted += changed;
        _watcher.Renamed += (_, _) => changed(null!, null!);
        _debounce = new Timer(_ => Reload(), null, System.Threading.Timeout.Infinite, System.Threading.Timeout.Infinite);
        _watcher.EnableRaisingEvents = true;
        await _server.StartAsync(cancellationToken).ConfigureAwait(false);
        _log.Info($"xds-server: serving {_path} on {Legate.Network.SocketAddresses.Format(BoundEndpoint)} (ADS and per-type services, SotW and Delta)");
        if (_rest is not null)
        {
            await _rest.StartAsync(_restHandler.HandleAsync, cancellationToken).ConfigureAwait(false);
            _log.Info($"xds-server: serving REST (POST /v3/discovery:<type>) on {Legate.Network.SocketAddresses.Format(_rest.BoundEndpoint)}");
        }
    }

    /// <summary>Re-reads the directory; each type whose resources changed gets a new version, pushed to its subscribers.</summary>
    public void Reload()
    {
        List<XdsResourceType> changed = new();
        ClientStream[] clients;
        lock (_lock)
        {
            _directory.Reload();
            foreach (var type in XdsResourceType.All)
            {
                var resources = _directory.AllOf(type);
                var same = _snapshot.TryGetValue(type, out var current)
                    && current.Resources.Count == resources.Count
                    && resources.All(r => current.Resources.TryGetValue(r.Key, out var had) && had.Equals(r.Value));
                if (!same)
                {
                    var version = (current is null ? 0 : current.Version) + 1;
                    _snapshot[type] = new ServedResources(version, resources, current);
                    changed.Add(type);
                    _log.Info($"xds-server: {type.ShortName} version {version} ({resources.Count} resource(s))");
                }
            }

            clients = _clients.ToArray();
        }

        if (changed.Count > 0)
        {
            Pushing?.Invoke();
        }

        foreach (var client in clients)
        {
            foreach (var type in changed)
            {
                client.Push(type);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _watcher?.Dispose();
        if (_debounce is not null)
        {
            await _debounce.DisposeAsync().ConfigureAwait(false);
        }

        await _server.StopAsync(new CancellationToken(canceled: true)).ConfigureAwait(false);
        await _server.DisposeAsync().ConfigureAwait(false);
        if (_rest is not null)
        {
            await _rest.DisposeAsync().ConfigureAwait(false);
        }
    }

    private ServedResources StateOf(XdsResourceType type)
    {
        lock (_lock)
        {
            return _snapshot.GetValueOrDefault(type) ?? ServedResources.Empty;
        }
    }

    private string NextNonce() => Interlocked.Increment(ref _nonce).ToString(CultureInfo.InvariantCulture);

    private async Task ServeAsync(GrpcServerCall call, bool delta, XdsResourceType? only)
    {
        var client = new ClientStream(this, call, delta);
        lock (_lock)
        {
            _clients.Add(client);
        }

        try
        {
            if (delta)
            {
                while (await call.ReadAsync(DeltaDiscoveryRequest.Parser, call.CallAborted).ConfigureAwait(false) is { } request)
                {
                    client.OnDelta(request, only);
                }
            }
            else
            {
                while (await call.ReadAsync(DiscoveryRequest.Parser, call.CallAborted).ConfigureAwait(false) is { } request)
                {
                    client.OnSotw(request, only);
                }
            }
        }
        finally
        {
            lock (_lock)
            {
                _clients.Remove(client);
            }

            _log.Info($"xds-server: client '{client.NodeId}' disconnected");
        }
    }

    /// <summary>One client stream: what it subscribed to, and (Delta) which resource versions it has.</summary>
    private sealed class ClientStream(XdsManagementServer owner, GrpcServerCall call, bool delta)
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<XdsResourceType, (bool Wildcard, HashSet<string> Names)> _subscriptions = new();
        private readonly Dictionary<XdsResourceType, Dictionary<string, string>> _versions = new();
        private readonly Dictionary<XdsResourceType, string> _sentVersion = new();

        public string NodeId { get; private set; } = "?";

        public void OnSotw(DiscoveryRequest request, XdsResourceType? only)
        {
            if (request.Node is { } node)
            {
                NodeId = node.Id;
            }

            if (XdsResourceType.FromTypeUrl(request.TypeUrl) is not { } type || (only is not null && only != type))
            {
                owner._log.Warn($"xds-server: client '{NodeId}' asked for unknown type {request.TypeUrl}");
                return;
            }

            if (request.ResponseNonce.Length > 0)
            {
                if (request.ErrorDetail is { } error)
                {
                    owner._log.Warn($"xds-server: client '{NodeId}' NACK {type.ShortName} (nonce {request.ResponseNonce}, keeps version '{request.VersionInfo}'): {error.Message}");
                }
                else
                {
                    owner._log.Info($"xds-server: client '{NodeId}' ACK {type.ShortName} version '{request.VersionInfo}'");
                }
            }

            bool send;
            lock (_lock)
            {
                var names = request.ResourceNames.ToHashSet(StringComparer.Ordinal);
                var wildcard = type.IsWildcard && (names.Count == 0 || names.Contains("*"));
                var changed = !_subscriptions.TryGetValue(type, out var previous) || !previous.Names.SetEquals(names);
                _subscriptions[type] = (wildcard, names);
                var current = owner.StateOf(type).Version.ToString(CultureInfo.InvariantCulture);
                // A new stream, new names, or a client behind the current version: send the state.
                send = request.ResponseNonce.Length == 0 || changed || (request.ErrorDetail is null && request.VersionInfo != current && _sentVersion.GetValueOrDefault(type) != current);
            }

            if (send)
            {
                Push(type);
            }
        }

        public void OnDelta(DeltaDiscoveryRequest request, XdsResourceType? only)
        {
            if (request.Node is { } node)
            {
                NodeId = node.Id;
            }

            if (XdsResourceType.FromTypeUrl(request.TypeUrl) is not { } type || (only is not null && only != type))
            {
                owner._log.Warn($"xds-server: client '{NodeId}' asked for unknown type {request.TypeUrl}");
                return;
            }

            if (request.ResponseNonce.Length > 0)
            {
                if (request.ErrorDetail is { } error)
                {
                    owner._log.Warn($"xds-server: client '{NodeId}' NACK {type.ShortName} (nonce {request.ResponseNonce}): {error.Message}");
                }
                else
                {
                    owner._log.Info($"xds-server: client '{NodeId}' ACK {type.ShortName} (nonce {request.ResponseNonce})");
                }
            }

            lock (_lock)
            {
                if (!_subscriptions.TryGetValue(type, out var subscription))
                {
                    subscription = (type.IsWildcard && request.ResourceNamesSubscribe.Count == 0, new HashSet<string>(StringComparer.Ordinal));
                    _versions[type] = new Dictionary<string, string>(request.InitialResourceVersions, StringComparer.Ordinal);
                }

                foreach (var name in request.ResourceNamesSubscribe)
                {
                    if (name == "*")
                    {
                        subscription.Wildcard = true;
                    }
                    else
                    {
                        subscription.Names.Add(name);
                    }
                }

                foreach (var name in request.ResourceNamesUnsubscribe)
                {
                    subscription.Names.Remove(name);
                    _versions[type].Remove(name);
                }

                _subscriptions[type] = subscription;
            }

            Push(type);
        }

        public void Push(XdsResourceType type)
        {
            var state = owner.StateOf(type);
            lock (_lock)
            {
                if (!_subscriptions.TryGetValue(type, out var subscription))
                {
                    return;
                }

                var wanted = subscription.Wildcard ? state.Sorted : state.Sorted.Where(r => subscription.Names.Contains(r.Name)).ToArray();
                var versionText = state.Version.ToString(CultureInfo.InvariantCulture);
                if (!delta)
                {
                    // Each resource's bytes were encoded once for this version: the response is their concatenation.
                    var body = new SotwBody(versionText, type.TypeUrl, owner.NextNonce(), wanted);
                    _sentVersion[type] = versionText;
                    _ = WriteAsync(body);
                    return;
                }

                var known = _versions[type];
                var deltaResponse = new DeltaDiscoveryResponse { TypeUrl = type.TypeUrl, SystemVersionInfo = versionText, Nonce = owner.NextNonce() };
                foreach (var resource in wanted)
                {
                    if (!known.TryGetValue(resource.Name, out var had) || had != resource.Version)
                    {
                        deltaResponse.Resources.Add(new Resource { Name = resource.Name, Version = resource.Version, Resource_ = resource.Any });
                        known[resource.Name] = resource.Version;
                    }
                }

                var present = wanted.Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
                foreach (var name in known.Keys.Where(n => !present.Contains(n)).ToList())
                {
                    deltaResponse.RemovedResources.Add(name);
                    known.Remove(name);
                }

                if (deltaResponse.Resources.Count > 0 || deltaResponse.RemovedResources.Count > 0)
                {
                    _ = WriteAsync(deltaResponse);
                }
            }
        }

        private async Task WriteAsync(Google.Protobuf.IMessage message)
        {
            try
            {
                await call.WriteAsync(message, call.CallAborted).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
            {
                // The client is gone; its stream's loop ends too.
            }
        }

        private async Task WriteAsync(SotwBody body)
        {
            try
            {
                await call.WriteAsync(body.Length, body.WriteTo, call.CallAborted).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
            {
                // The client is gone; its stream's loop ends too.
            }
        }
    }
}
