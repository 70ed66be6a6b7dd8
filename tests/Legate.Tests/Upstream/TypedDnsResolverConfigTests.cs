using Legate.Tests.Harness;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

/// <summary><c>typed_dns_resolver_config</c>: c-ares resolvers go to Legate's DNS client; getaddrinfo is the default.</summary>
public sealed class TypedDnsResolverConfigTests
{
    [Fact]
    public async Task CaresResolversAreAskedInsteadOfTheSystemResolver()
    {
        await using var dns = ScriptedDnsServer.Start();
        dns.Set("pods.test", ("10.0.0.9", 30));
        var time = new ManualTimeProvider();
        var cluster = UpstreamTestConfigs.Build($$"""
            name: pods
            type: STRICT_DNS
            dns_lookup_family: V4_ONLY
            typed_dns_resolver_config:
              name: envoy.network.dns_resolver.cares
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig
                resolvers: [ { socket_address: { address: 127.0.0.1, port_value: {{dns.Port}} } } ]
            load_assignment:
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: pods.test, port_value: 80 } } }
            """, UpstreamTestConfigs.Deterministic(new FakeDnsResolver(), time));
        await using var _ = cluster;
        await cluster.InitializeAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(["10.0.0.9:80"], UpstreamTestConfigs.Addresses(cluster.PrioritySet.Current.Hosts));
        Assert.Equal(1, dns.Queries("pods.test"));
    }

    [Theory]
    [InlineData("envoy.network.dns_resolver.cares", "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig", "resolvers: [ { socket_address: { address: 10.0.0.53, port_value: 53 } } ]")]
    [InlineData("envoy.network.dns_resolver.getaddrinfo", "type.googleapis.com/envoy.extensions.network.dns_resolver.getaddrinfo.v3.GetAddrInfoDnsResolverConfig", "")]
    public void BothResolversLoadWithoutWarnings(string name, string type, string fields)
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, $$"""
                static_resources:
                  clusters:
                  - name: pods
                    type: STRICT_DNS
                    typed_dns_resolver_config:
                      name: {{name}}
                      typed_config: { "@type": {{type}}{{(fields.Length > 0 ? ", " + fields : "")}} }
                    load_assignment:
                      cluster_name: pods
                      endpoints:
                      - lb_endpoints:
                        - endpoint: { address: { socket_address: { address: pods.test, port_value: 80 } } }
                """);
            var loaded = Legate.Config.BootstrapLoader.Load(path, null);
            Assert.Empty(loaded.Warnings);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task GetaddrinfoReportsEnvoysFixedSixtySecondTtl()
    {
        IDnsResolver resolver = SystemDnsResolver.Instance;
        var records = await resolver.ResolveRecordsAsync("127.0.0.1", System.Net.Sockets.AddressFamily.Unspecified, CancellationToken.None);
        Assert.Equal(TimeSpan.FromSeconds(60), Assert.Single(records).Ttl);
    }
}
