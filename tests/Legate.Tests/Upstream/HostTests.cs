using System.Net;
using Envoy.Config.Core.V3;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

public sealed class HostTests
{
    private static readonly IPEndPoint s_address = IPEndPoint.Parse("10.0.0.1:80");

    [Theory]
    [InlineData(HealthStatus.Unknown, HostHealth.Healthy, HostHealthFlags.None)]
    [InlineData(HealthStatus.Healthy, HostHealth.Healthy, HostHealthFlags.None)]
    [InlineData(HealthStatus.Unhealthy, HostHealth.Unhealthy, HostHealthFlags.FailedEdsHealth)]
    [InlineData(HealthStatus.Draining, HostHealth.Unhealthy, HostHealthFlags.EdsStatusDraining)]
    [InlineData(HealthStatus.Timeout, HostHealth.Unhealthy, HostHealthFlags.FailedEdsHealth)]
    [InlineData(HealthStatus.Degraded, HostHealth.Degraded, HostHealthFlags.DegradedEdsHealth)]
    internal void HealthStatusMapsAsInEnvoy(HealthStatus status, HostHealth health, HostHealthFlags flags)
    {
        var host = new Host(s_address, healthStatus: status);

        Assert.Equal(health, host.Health);
        Assert.Equal(flags, host.HealthFlags);
        Assert.Equal(status, host.HealthStatus);
    }

    [Fact]
    public void FailureOutranksDegradedAndEachSourceKeepsItsOwnFlag()
    {
        var host = new Host(s_address, healthStatus: HealthStatus.Degraded);

        Assert.True(host.SetHealthFlag(HostHealthFlags.FailedActiveHealthCheck));
        Assert.False(host.SetHealthFlag(HostHealthFlags.FailedActiveHealthCheck));
        Assert.Equal(HostHealth.Unhealthy, host.Health);

        // EDS says healthy again: the health checker's failure still stands.
        Assert.True(host.SetHealthStatus(HealthStatus.Healthy));
        Assert.Equal(HostHealthFlags.FailedActiveHealthCheck, host.HealthFlags);
        Assert.Equal(HostHealth.Unhealthy, host.Health);

        Assert.True(host.ClearHealthFlag(HostHealthFlags.FailedActiveHealthCheck));
        Assert.False(host.ClearHealthFlag(HostHealthFlags.FailedActiveHealthCheck));
        Assert.Equal(HostHealth.Healthy, host.Health);
    }

    [Fact]
    public void DefaultsAreEnvoys()
    {
        var host = new Host(s_address);

        Assert.Equal(1u, host.Weight);
        Assert.Equal(0u, host.Priority);
        Assert.Equal("", host.Hostname);
        Assert.Null(host.Locality);
        Assert.Null(host.Metadata);
        Assert.Equal([s_address], host.AddressList.ToArray());
        Assert.False(host.IsLogical);
        Assert.Equal("10.0.0.1:80", host.ToString());
    }

    [Fact]
    public void CountersAreSharedAcrossThreads()
    {
        var host = new Host(s_address);

        Parallel.For(0, 8, _ =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                host.RequestStarted();
                host.ConnectionOpened();
                host.RequestFinished();
            }
        });

        Assert.Equal(0, host.ActiveRequests);
        Assert.Equal(80_000, host.TotalRequests);
        Assert.Equal(80_000, host.ActiveConnections);
        Assert.Equal(80_000, host.TotalConnections);
    }

    [Fact]
    public void ZeroWeightIsRejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new Host(s_address, weight: 0));

    [Fact]
    public void OnlyALogicalHostFollowsDns()
    {
        var fixedHost = new Host(s_address);
        var logical = Host.CreateLogical([s_address], "db.internal", 1, null, null, HealthStatus.Unknown);

        logical.SetLogicalAddresses([IPEndPoint.Parse("10.0.0.9:80"), IPEndPoint.Parse("10.0.0.8:80")]);

        Assert.Equal(IPEndPoint.Parse("10.0.0.9:80"), logical.Address);
        Assert.Equal(2, logical.AddressList.Length);
        Assert.Equal("db.internal (10.0.0.9:80)", logical.ToString());
        Assert.Throws<InvalidOperationException>(() => fixedHost.SetLogicalAddresses([IPEndPoint.Parse("10.0.0.9:80")]));
    }
}
