using System.Collections.Concurrent;
using Legate.Network;

namespace Legate.Upstream.ConnectionPool;

/// <summary>
/// A host's HTTP/1.1 pools of a TLS cluster with auto_sni or auto_san_validation: connections made
/// for one host name (sent as SNI, required in the certificate) never carry requests for another,
/// so there is one <see cref="Http1ConnectionPool"/> per name, as Envoy keys pools by the
/// transport socket options.
/// </summary>
internal sealed class Http1PoolsByServerName(Host host, Cluster cluster, SocketTransport transport, TimeProvider time,
    Envoy.Config.Core.V3.RoutingPriority priority = Envoy.Config.Core.V3.RoutingPriority.Default) : IDrainableConnectionPool
{
    private readonly ConcurrentDictionary<string, Http1ConnectionPool> _pools = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The pool for requests whose host is <paramref name="name"/> ("" when the request has none).</summary>
    public Http1ConnectionPool For(string name) =>
        _pools.TryGetValue(name, out var pool) ? pool : _pools.GetOrAdd(name, Create);

    public void DrainConnections()
    {
        foreach (var pool in _pools.Values)
        {
            pool.DrainConnections();
        }
    }

    private Http1ConnectionPool Create(string name)
    {
        var info = cluster.Info;
        var serverName = info.AutoSni && name.Length > 0 ? name : null;
        var verifyName = info.AutoSanValidation && name.Length > 0 ? name : null;
        return new Http1ConnectionPool(host, cluster, transport, time, serverName, verifyName, priority);
    }
}
