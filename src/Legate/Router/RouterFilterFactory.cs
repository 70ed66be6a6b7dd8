using System.Collections.Concurrent;
using Google.Protobuf;
using Legate.Config;
using Legate.Http;
using Legate.Network;
using Legate.Upstream;
using RouterConfig = Envoy.Extensions.Filters.Http.Router.V3.Router;

namespace Legate.Router;

/// <summary>The compiled <c>envoy.filters.http.router</c> config: creates a <see cref="RouterFilter"/> per stream.</summary>
internal sealed class RouterFilterFactory : HttpFilterFactory
{
    private static readonly ConcurrentDictionary<int, SocketTransport> s_transports = new();

    private RouterFilterFactory(string name, RouterConfig config, HttpFilterFactoryContext context)
        : base(name)
    {
        ClusterManager = context.ClusterManager;
        Time = context.Time;
        SuppressEnvoyHeaders = config.SuppressEnvoyHeaders;
    }

    public override bool IsTerminal => true;

    public ClusterManager ClusterManager { get; }

    public TimeProvider Time { get; }

    /// <summary>Envoy's <c>suppress_envoy_headers</c>: no x-envoy-* headers added upstream or downstream.</summary>
    public bool SuppressEnvoyHeaders { get; }

    public static HttpFilterFactory? Create(string name, IMessage config, string path, ConfigErrors errors, HttpFilterFactoryContext context) =>
        new RouterFilterFactory(name, (RouterConfig)config, context);

    public override HttpFilter CreateFilter() => new RouterFilter(this);

    /// <summary>The socket transport for upstream connections with this read-ahead limit (shared by clusters with the same limit).</summary>
    public static SocketTransport TransportFor(int bufferLimitBytes) =>
        s_transports.GetOrAdd(bufferLimitBytes, static limit => new SocketTransport(limit));
}
