using Envoy.Config.Bootstrap.V3;
using Legate.Config;
using Legate.Upstream;
using ClusterConfig = Envoy.Config.Cluster.V3.Cluster;

namespace Legate.Tests.Upstream;

/// <summary>Builds cluster protos from YAML the way the loader does, and clusters from them.</summary>
internal static class UpstreamTestConfigs
{
    public static ClusterConfig ParseCluster(string yaml)
    {
        var errors = new ConfigErrors();
        var config = new ProtoConverter(errors).Convert<ClusterConfig>(ConfigDocument.Parse(yaml, ConfigFormat.Yaml));
        Assert.Empty(errors.Errors);
        return config;
    }

    public static Bootstrap ParseBootstrap(string yaml)
    {
        var errors = new ConfigErrors();
        var bootstrap = new ProtoConverter(errors).Convert<Bootstrap>(ConfigDocument.Parse(yaml, ConfigFormat.Yaml));
        Assert.Empty(errors.Errors);
        return bootstrap;
    }

    /// <summary>Compiles a cluster that must compile without errors.</summary>
    public static Cluster Build(string yaml, ClusterFactoryContext? context = null)
    {
        var errors = new ConfigErrors();
        var cluster = ClusterFactory.Create(ParseCluster(yaml), "cluster", errors, context ?? Deterministic());
        Assert.Empty(errors.Errors);
        return Assert.IsAssignableFrom<Cluster>(cluster);
    }

    public static ClusterFactoryContext Deterministic(FakeDnsResolver? dns = null, TimeProvider? time = null) => new()
    {
        DnsResolver = dns ?? new FakeDnsResolver(),
        TimeProvider = time ?? new ManualTimeProvider(),
        Random = new Random(1234),
    };

    /// <summary>"ip:port" of every host, in order.</summary>
    public static string[] Addresses(IEnumerable<Host> hosts) => hosts.Select(h => Legate.Network.SocketAddresses.Format(h.Address)).ToArray();
}
