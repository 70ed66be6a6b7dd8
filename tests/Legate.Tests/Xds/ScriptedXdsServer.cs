using System.Collections.Concurrent;
using System.Net;
using System.Threading.Channels;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Grpc;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Tests.Harness;

namespace Legate.Tests.Xds;

/// <summary>
/// A minimal, independent xDS management server for tests (written for the tests, not the bundled
/// server): ADS in state of the world and Delta. The test sets each type's resources and version;
/// the server pushes them to every stream that asked for the type, records every request, and can
/// be told to ignore a type (to test initial_fetch_timeout) or be stopped and restarted on the same port.
/// </summary>
internal sealed class ScriptedXdsServer : IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, (string Version, List<IMessage> Resources)> _state = new();
    private readonly List<Stream> _streams = new();
    private readonly LogManager _logs = LogManager.Create(CommandLineParser.Parse([]), new CapturingLogSink());
    private GrpcServer? _server;
    private int _nonce;

    private ScriptedXdsServer()
    {
    }

    public int Port { get; private set; }

    /// <summary>Every SotW request received, in order.</summary>
    public ConcurrentQueue<DiscoveryRequest> Requests { get; } = new();

    public ConcurrentQueue<DeltaDiscoveryRequest> DeltaRequests { get; } = new();

    /// <summary>Types the server never answers (initial_fetch_timeout tests).</summary>
    public HashSet<string> Silent { get; } = new();

    public int StreamsOpened;

    private readonly Channel<object> _arrivals = Channel.CreateUnbounded<object>();

    public static async Task<ScriptedXdsServer> StartAsync(int port = 0)
    {
        var server = new ScriptedXdsServer();
        await server.StartServerAsync(port);
        return server;
    }

    public async Task StartServerAsync(int port)
    {
        _server = new GrpcServer(new IPEndPoint(IPAddress.Loopback, port), _logs.Get(LogComponents.Misc))
            .Map("/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources", RunSotwAsync)
            .Map("/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources", RunDeltaAsync);
        await _server.StartAsync(CancellationToken.None);
        Port = _server.BoundEndpoint.Port;
    }

    /// <summary>Stops the server, closing every stream (the client must reconnect).</summary>
    public async Task StopServerAsync()
    {
        if (_server is { } server)
        {
            _server = null;
            await server.StopAsync(new CancellationToken(canceled: true));
            await server.DisposeAsync();
        }
    }

    /// <summary>Sets a type's resources and version and pushes them to every stream subscribed to it.</summary>
    public void Set(string typeUrl, string version, params IMessage[] resources)
    {
        Stream[] streams;
        lock (_lock)
        {
            _state[typeUrl] = (version, resources.ToList());
            streams = _streams.ToArray();
        }

        foreach (var stream in streams)
        {
            stream.Push(typeUrl);
        }
    }

    /// <summary>Waits for a SotW request matching <paramref name="predicate"/> (already received ones count).</summary>
    public async Task<DiscoveryRequest> WaitForRequestAsync(Func<DiscoveryRequest, bool> predicate, TimeSpan? timeout = null)
    {
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            if (Requests.FirstOrDefault(predicate) is { } found)
            {
                return found;
            }

            await _arrivals.Reader.ReadAsync(cancel.Token);
        }
    }

    public async Task<DeltaDiscoveryRequest> WaitForDeltaRequestAsync(Func<DeltaDiscoveryRequest, bool> predicate, TimeSpan? timeout = null)
    {
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            if (DeltaRequests.FirstOrDefault(predicate) is { } found)
            {
                return found;
            }

            await _arrivals.Reader.ReadAsync(cancel.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopServerAsync();
        _logs.Dispose();
    }

    private async Task RunSotwAsync(GrpcServerCall call)
    {
        Interlocked.Increment(ref StreamsOpened);
        var stream = new Stream(this, call, delta: false);
        lock (_lock)
        {
            _streams.Add(stream);
        }

        try
        {
            while (await call.ReadAsync(DiscoveryRequest.Parser, call.CallAborted) is { } request)
            {
                Requests.Enqueue(request);
                _arrivals.Writer.TryWrite(request);
                var first = stream.Subscribe(request.TypeUrl, request.ResourceNames, wildcard: request.ResourceNames.Count == 0);
                if (request.ResponseNonce.Length == 0 || first || stream.NamesChanged(request.TypeUrl))
                {
                    stream.Push(request.TypeUrl);
                }
            }
        }
        finally
        {
            lock (_lock)
            {
                _streams.Remove(stream);
            }
        }
    }

    private async Task RunDeltaAsync(GrpcServerCall call)
    {
        Interlocked.Increment(ref StreamsOpened);
        var stream = new Stream(this, call, delta: true);
        lock (_lock)
        {
            _streams.Add(stream);
        }

        try
        {
            while (await call.ReadAsync(DeltaDiscoveryRequest.Parser, call.CallAborted) is { } request)
            {
                DeltaRequests.Enqueue(request);
                _arrivals.Writer.TryWrite(request);
                if (request.ResponseNonce.Length > 0 && request.ResourceNamesSubscribe.Count == 0 && request.ResourceNamesUnsubscribe.Count == 0)
                {
                    continue; // an ACK or NACK
                }

                stream.DeltaSubscribe(request);
                stream.Push(request.TypeUrl);
            }
        }
        finally
        {
            lock (_lock)
            {
                _streams.Remove(stream);
            }
        }
    }

    private string NextNonce() => Interlocked.Increment(ref _nonce).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string NameOf(IMessage message) => message switch
    {
        Envoy.Config.Cluster.V3.Cluster c => c.Name,
        Envoy.Config.Listener.V3.Listener l => l.Name,
        Envoy.Config.Route.V3.RouteConfiguration r => r.Name,
        Envoy.Config.Endpoint.V3.ClusterLoadAssignment a => a.ClusterName,
        Envoy.Service.Runtime.V3.Runtime r => r.Name,
        Envoy.Extensions.TransportSockets.Tls.V3.Secret s => s.Name,
        Envoy.Config.Core.V3.TypedExtensionConfig e => e.Name,
        _ => throw new ArgumentException(message.GetType().Name),
    };

    private sealed class Stream(ScriptedXdsServer owner, GrpcServerCall call, bool delta)
    {
        private readonly Dictionary<string, (bool Wildcard, HashSet<string> Names)> _subscriptions = new();
        private readonly Dictionary<string, Dictionary<string, string>> _sent = new();
        private readonly HashSet<string> _namesChanged = new();
        private readonly Lock _lock = new();

        public bool Subscribe(string typeUrl, IEnumerable<string> names, bool wildcard)
        {
            lock (_lock)
            {
                var set = names.ToHashSet();
                var first = !_subscriptions.TryGetValue(typeUrl, out var previous);
                if (!first && !previous.Names.SetEquals(set))
                {
                    _namesChanged.Add(typeUrl);
                }

                _subscriptions[typeUrl] = (wildcard, set);
                return first;
            }
        }

        public bool NamesChanged(string typeUrl)
        {
            lock (_lock)
            {
                return _namesChanged.Remove(typeUrl);
            }
        }

        public void DeltaSubscribe(DeltaDiscoveryRequest request)
        {
            lock (_lock)
            {
                if (!_subscriptions.TryGetValue(request.TypeUrl, out var subscription))
                {
                    subscription = (request.ResourceNamesSubscribe.Count == 0, new HashSet<string>());
                    var sent = new Dictionary<string, string>();
                    foreach (var (name, version) in request.InitialResourceVersions)
                    {
                        sent[name] = version;
                    }

                    _sent[request.TypeUrl] = sent;
                }

                subscription.Names.UnionWith(request.ResourceNamesSubscribe);
                subscription.Names.ExceptWith(request.ResourceNamesUnsubscribe);
                foreach (var name in request.ResourceNamesUnsubscribe)
                {
                    _sent[request.TypeUrl].Remove(name);
                }

                _subscriptions[request.TypeUrl] = subscription;
            }
        }

        public void Push(string typeUrl)
        {
            (string Version, List<IMessage> Resources) state;
            (bool Wildcard, HashSet<string> Names) subscription;
            lock (owner._lock)
            {
                if (!owner._state.TryGetValue(typeUrl, out state) || owner.Silent.Contains(typeUrl))
                {
                    return;
                }
            }

            lock (_lock)
            {
                if (!_subscriptions.TryGetValue(typeUrl, out subscription))
                {
                    return;
                }

                var wanted = state.Resources.Where(r => subscription.Wildcard || subscription.Names.Contains(NameOf(r))).ToList();
                if (!delta)
                {
                    var response = new DiscoveryResponse { TypeUrl = typeUrl, VersionInfo = state.Version, Nonce = owner.NextNonce() };
                    response.Resources.Add(wanted.Select(Any.Pack));
                    _ = call.WriteAsync(response);
                    return;
                }

                var sent = _sent[typeUrl];
                var deltaResponse = new DeltaDiscoveryResponse { TypeUrl = typeUrl, SystemVersionInfo = state.Version, Nonce = owner.NextNonce() };
                foreach (var resource in wanted)
                {
                    var name = NameOf(resource);
                    var version = state.Version + ":" + resource.GetHashCode().ToString(System.Globalization.CultureInfo.InvariantCulture);
                    if (!sent.TryGetValue(name, out var had) || had != version)
                    {
                        deltaResponse.Resources.Add(new Resource { Name = name, Version = version, Resource_ = Any.Pack(resource) });
                        sent[name] = version;
                    }
                }

                var present = wanted.Select(NameOf).ToHashSet();
                foreach (var name in sent.Keys.Where(n => !present.Contains(n)).ToList())
                {
                    deltaResponse.RemovedResources.Add(name);
                    sent.Remove(name);
                }

                if (deltaResponse.Resources.Count > 0 || deltaResponse.RemovedResources.Count > 0)
                {
                    _ = call.WriteAsync(deltaResponse);
                }
            }
        }
    }
}
