using System.Net;
using Envoy.Config.Core.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

public sealed class PrioritySetTests
{
    [Fact]
    public void GroupsHostsByPriorityAndHealth()
    {
        var set = new PrioritySet();
        var a = Host("10.0.0.1:80", priority: 0);
        var b = Host("10.0.0.2:80", priority: 0, status: HealthStatus.Unhealthy);
        var c = Host("10.0.0.3:80", priority: 0, status: HealthStatus.Degraded);
        var d = Host("10.0.0.4:80", priority: 2);

        var update = set.Update([a, b, c, d]);

        var snapshot = set.Current;
        Assert.True(update.Changed);
        Assert.Equal([a, b, c, d], update.Added.ToArray());
        Assert.Empty(update.Removed);
        Assert.Equal(1, snapshot.Version);
        Assert.Equal([0u, 2u], snapshot.HostSets.Select(s => s.Priority));
        Assert.Equal([a, b, c], snapshot.HostSets[0].Hosts.ToArray());
        Assert.Equal([a], snapshot.HostSets[0].HealthyHosts.ToArray());
        Assert.Equal([c], snapshot.HostSets[0].DegradedHosts.ToArray());
        Assert.Equal([d], snapshot.HostSets[1].HealthyHosts.ToArray());
    }

    [Fact]
    public void AnUpdateKeepsTheHostObjectsOfUnchangedAddresses()
    {
        var set = new PrioritySet();
        var kept = Host("10.0.0.1:80");
        var dropped = Host("10.0.0.2:80");
        set.Update([kept, dropped]);
        kept.RequestStarted();
        kept.ConnectionOpened();
        var before = set.Current;

        var sameAddress = Host("10.0.0.1:80", weight: 5);
        var added = Host("10.0.0.3:80");
        var update = set.Update([sameAddress, added]);

        var hosts = set.Current.Hosts;
        Assert.Same(kept, hosts[0]);
        Assert.Same(added, hosts[1]);
        Assert.Equal(5u, kept.Weight);
        Assert.Equal(1, kept.ActiveRequests);
        Assert.Equal(1, kept.ActiveConnections);
        Assert.Equal([added], update.Added.ToArray());
        Assert.Equal([dropped], update.Removed.ToArray());

        // Readers holding the old snapshot still see the old hosts.
        Assert.Equal([kept, dropped], before.Hosts.ToArray());
    }

    [Fact]
    public void AKeptHostTakesTheNewPriorityMetadataAndHealth()
    {
        var set = new PrioritySet();
        var host = Host("10.0.0.1:80");
        set.Update([host]);
        var metadata = new Metadata { FilterMetadata = { ["envoy.lb"] = new Struct { Fields = { ["canary"] = Value.ForBool(true) } } } };

        set.Update([new Host(IPEndPoint.Parse("10.0.0.1:80"), priority: 1, metadata: metadata, healthStatus: HealthStatus.Draining)]);

        Assert.Same(host, set.Current.Hosts[0]);
        Assert.Equal(1u, host.Priority);
        Assert.Equal(metadata, host.Metadata);
        Assert.Equal(HostHealth.Unhealthy, host.Health);
        Assert.Equal(1u, set.Current.HostSets[0].Priority);
        Assert.Empty(set.Current.HostSets[0].HealthyHosts);
    }

    [Fact]
    public void ANewLocalityOrHostnameMakesANewHost()
    {
        var set = new PrioritySet();
        var host = new Host(IPEndPoint.Parse("10.0.0.1:80"), "a.example", locality: new Locality { Zone = "z1" });
        set.Update([host]);

        var moved = new Host(IPEndPoint.Parse("10.0.0.1:80"), "a.example", locality: new Locality { Zone = "z2" });
        var update = set.Update([moved]);
        var renamed = new Host(IPEndPoint.Parse("10.0.0.1:80"), "b.example", locality: new Locality { Zone = "z2" });
        var second = set.Update([renamed]);

        Assert.Equal([moved], update.Added.ToArray());
        Assert.Equal([host], update.Removed.ToArray());
        Assert.Equal([renamed], second.Added.ToArray());
        Assert.Same(renamed, set.Current.Hosts[0]);
    }

    /// <summary>Envoy treats a host whose health check address or name changed as a new host: its checks start over.</summary>
    [Fact]
    public void AChangedHealthCheckConfigMakesANewHost()
    {
        var set = new PrioritySet();
        var host = new Host(IPEndPoint.Parse("10.0.0.1:80")) { HealthCheckPort = 8080 };
        set.Update([host]);

        var same = set.Update([new Host(IPEndPoint.Parse("10.0.0.1:80")) { HealthCheckPort = 8080 }]);
        Assert.Same(host, set.Current.Hosts[0]);
        Assert.Empty(same.Added);

        var moved = new Host(IPEndPoint.Parse("10.0.0.1:80")) { HealthCheckPort = 9090 };
        var update = set.Update([moved]);
        Assert.Equal([moved], update.Added.ToArray());
        Assert.Equal([host], update.Removed.ToArray());
        Assert.Equal(IPEndPoint.Parse("10.0.0.1:9090"), set.Current.Hosts[0].HealthCheckAddress);
    }

    [Fact]
    public void AnUpdateThatChangesNothingPublishesNothing()
    {
        var set = new PrioritySet();
        set.Update([Host("10.0.0.1:80"), Host("10.0.0.2:80")]);
        var before = set.Current;
        var events = 0;
        set.Updated += _ => events++;

        var update = set.Update([Host("10.0.0.1:80"), Host("10.0.0.2:80")]);

        Assert.False(update.Changed);
        Assert.Same(before, set.Current);
        Assert.Equal(0, events);
    }

    [Fact]
    public void DuplicateAddressesAreKeptOneForOne()
    {
        var set = new PrioritySet();
        var first = Host("10.0.0.1:80");
        var second = Host("10.0.0.1:80");
        set.Update([first, second]);

        var update = set.Update([Host("10.0.0.1:80")]);

        Assert.Equal([first], set.Current.Hosts.ToArray());
        Assert.Equal([second], update.Removed.ToArray());
    }

    [Fact]
    public void RefreshHealthRebuildsTheListsFromTheFlags()
    {
        var set = new PrioritySet();
        var a = Host("10.0.0.1:80");
        var b = Host("10.0.0.2:80");
        set.Update([a, b]);

        a.SetHealthFlag(HostHealthFlags.FailedOutlierCheck);
        Assert.Equal([a, b], set.Current.HostSets[0].HealthyHosts.ToArray());
        set.RefreshHealth();

        Assert.Equal([b], set.Current.HostSets[0].HealthyHosts.ToArray());
        Assert.Equal(2, set.Current.Version);
    }

    [Fact]
    public void UpdatedReportsAddedAndRemoved()
    {
        var set = new PrioritySet();
        var a = Host("10.0.0.1:80");
        var b = Host("10.0.0.2:80");
        set.Update([a]);
        var updates = new List<HostUpdate>();
        set.Updated += updates.Add;

        set.Update([b]);

        var update = Assert.Single(updates);
        Assert.Equal([b], update.Added.ToArray());
        Assert.Equal([a], update.Removed.ToArray());
    }

    private static Host Host(string address, uint weight = 1, uint priority = 0, HealthStatus status = HealthStatus.Unknown) =>
        new(IPEndPoint.Parse(address), weight: weight, priority: priority, healthStatus: status);
}
