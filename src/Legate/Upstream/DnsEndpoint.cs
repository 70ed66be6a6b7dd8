using System.Net;
using Envoy.Config.Core.V3;

namespace Legate.Upstream;

/// <summary>
/// One lb_endpoint of a DNS cluster: the name to resolve and what every host it resolves to gets
/// (port, weight, locality, priority, metadata, health status).
/// </summary>
/// <param name="Hostname">endpoint.hostname, or the DNS name when that is empty (as Envoy).</param>
internal sealed record DnsEndpoint(
    string DnsName,
    int Port,
    string Hostname,
    uint Weight,
    Locality? Locality,
    uint Priority,
    Metadata? Metadata,
    HealthStatus HealthStatus,
    uint LocalityWeight = 0)
{
    public Host CreateHost(IPAddress address) =>
        new(new IPEndPoint(address, Port), Hostname, Weight, Locality, Priority, Metadata, HealthStatus, LocalityWeight);
}
