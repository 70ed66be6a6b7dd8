using System.Globalization;
using System.Text;
using Envoy.Admin.V3;
using Legate.Network;
using Legate.Server;
using Legate.Upstream;
using Microsoft.AspNetCore.Http;
using CircuitBreakersConfig = Envoy.Config.Cluster.V3.CircuitBreakers;
using CoreHealthStatus = Envoy.Config.Core.V3.HealthStatus;
using Percent = Envoy.Type.V3.Percent;
using RoutingPriority = Envoy.Config.Core.V3.RoutingPriority;

namespace Legate.Admin;

/// <summary>
/// <c>/clusters</c>: every cluster and host as Envoy prints them — text lines
/// <c>cluster::host::field::value</c> (circuit breaker limits per priority, <c>added_via_api</c>,
/// per-host counters, health flags, weight, locality, priority, success rates), or with
/// <c>?format=json</c> Envoy's <c>ClusterStatuses</c> message.
/// </summary>
internal sealed class ClustersHandler(IServerInstance server)
{
    public const string HelpText = "upstream cluster status";

    public ValueTask<AdminResponse> HandleAsync(HttpContext context)
    {
        var clusters = server.Clusters?.Clusters ?? [];
        var format = context.Request.Query["format"].ToString();
        return ValueTask.FromResult(format == "json" ? AdminResponse.Json(ProtoJson.Format(Json(clusters))) : AdminResponse.Text(Text(clusters)));
    }

    internal static string Text(IEnumerable<Cluster> clusters)
    {
        var sb = new StringBuilder();
        foreach (var cluster in clusters)
        {
            var name = cluster.Name;
            if (cluster.OutlierDetector is not null)
            {
                Line(sb, name, "outlier", "success_rate_average", "-1");
                Line(sb, name, "outlier", "success_rate_ejection_threshold", "-1");
                Line(sb, name, "outlier", "local_origin_success_rate_average", "-1");
                Line(sb, name, "outlier", "local_origin_success_rate_ejection_threshold", "-1");
            }

            foreach (var (label, resources) in new[] { ("default_priority", cluster.Info.CircuitBreakers.Default), ("high_priority", cluster.Info.CircuitBreakers.High) })
            {
                Line(sb, name, label, "max_connections", Number(resources.Connections.Max));
                Line(sb, name, label, "max_pending_requests", Number(resources.PendingRequests.Max));
                Line(sb, name, label, "max_requests", Number(resources.Requests.Max));
                Line(sb, name, label, "max_retries", Number(resources.Retries.Max));
            }

            sb.Append(name).Append("::added_via_api::false\n");
            foreach (var host in cluster.PrioritySet.Current.Hosts)
            {
                var address = SocketAddresses.Format(host.Address);
                Line(sb, name, address, "cx_active", Number(host.ActiveConnections));
                Line(sb, name, address, "cx_connect_fail", Number(host.ConnectFailures));
                Line(sb, name, address, "cx_total", Number(host.TotalConnections));
                Line(sb, name, address, "rq_active", Number(host.ActiveRequests));
                Line(sb, name, address, "rq_error", Number(host.Errors));
                Line(sb, name, address, "rq_success", Number(host.Successes));
                Line(sb, name, address, "rq_timeout", Number(host.Timeouts));
                Line(sb, name, address, "rq_total", Number(host.TotalRequests));
                Line(sb, name, address, "hostname", host.Hostname);
                Line(sb, name, address, "health_flags", HealthFlags(host));
                Line(sb, name, address, "weight", Number(host.Weight));
                Line(sb, name, address, "region", host.Locality?.Region ?? "");
                Line(sb, name, address, "zone", host.Locality?.Zone ?? "");
                Line(sb, name, address, "sub_zone", host.Locality?.SubZone ?? "");
                Line(sb, name, address, "canary", IsCanary(host) ? "true" : "false");
                Line(sb, name, address, "priority", Number(host.Priority));
                Line(sb, name, address, "success_rate", Rate(host.OutlierMonitor?.SuccessRate));
                Line(sb, name, address, "local_origin_success_rate", Rate(host.OutlierMonitor?.LocalOriginSuccessRate));
            }
        }

        return sb.ToString();
    }

    /// <summary>Envoy's health_flags text: <c>healthy</c>, or each failure/degradation flag with a leading slash.</summary>
    internal static string HealthFlags(Host host)
    {
        var flags = host.HealthFlags;
        var sb = new StringBuilder();
        void Add(HostHealthFlags flag, string text)
        {
            if ((flags & flag) != 0)
            {
                sb.Append(text);
            }
        }

        Add(HostHealthFlags.FailedActiveHealthCheck, "/failed_active_hc");
        Add(HostHealthFlags.FailedOutlierCheck, "/failed_outlier_check");
        Add(HostHealthFlags.FailedEdsHealth, "/failed_eds_health");
        Add(HostHealthFlags.DegradedActiveHealthCheck, "/degraded_active_hc");
        Add(HostHealthFlags.DegradedEdsHealth, "/degraded_eds_health");
        Add(HostHealthFlags.PendingActiveHealthCheck, "/pending_active_hc");
        Add(HostHealthFlags.ExcludedViaImmediateHealthCheckFail, "/excluded_via_immediate_hc_fail");
        Add(HostHealthFlags.ActiveHealthCheckTimeout, "/active_hc_timeout");
        Add(HostHealthFlags.EdsStatusDraining, "/eds_status_draining");
        return sb.Length == 0 ? "healthy" : sb.ToString();
    }

    internal static Clusters Json(IEnumerable<Cluster> clusters)
    {
        var result = new Clusters();
        foreach (var cluster in clusters)
        {
            var status = new ClusterStatus
            {
                Name = cluster.Name,
                ObservabilityName = cluster.Name,
                AddedViaApi = false,
                CircuitBreakers = new CircuitBreakersConfig
                {
                    Thresholds = { Thresholds(RoutingPriority.Default, cluster.Info.CircuitBreakers.Default), Thresholds(RoutingPriority.High, cluster.Info.CircuitBreakers.High) },
                },
            };
            foreach (var host in cluster.PrioritySet.Current.Hosts)
            {
                var flags = host.HealthFlags;
                var hostStatus = new HostStatus
                {
                    Address = new Envoy.Config.Core.V3.Address
                    {
                        SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = host.Address.Address.ToString(), PortValue = (uint)host.Address.Port },
                    },
                    Weight = host.Weight,
                    Hostname = host.Hostname,
                    Priority = host.Priority,
                    Locality = host.Locality?.Clone(),
                    HealthStatus = new HostHealthStatus
                    {
                        FailedActiveHealthCheck = (flags & HostHealthFlags.FailedActiveHealthCheck) != 0,
                        FailedOutlierCheck = (flags & HostHealthFlags.FailedOutlierCheck) != 0,
                        FailedActiveDegradedCheck = (flags & HostHealthFlags.DegradedActiveHealthCheck) != 0,
                        PendingActiveHc = (flags & HostHealthFlags.PendingActiveHealthCheck) != 0,
                        ExcludedViaImmediateHcFail = (flags & HostHealthFlags.ExcludedViaImmediateHealthCheckFail) != 0,
                        ActiveHcTimeout = (flags & HostHealthFlags.ActiveHealthCheckTimeout) != 0,
                        EdsHealthStatus = (flags & HostHealthFlags.EdsStatusDraining) != 0 ? CoreHealthStatus.Draining
                            : (flags & HostHealthFlags.FailedEdsHealth) != 0 ? (host.HealthStatus == CoreHealthStatus.Unknown ? CoreHealthStatus.Unhealthy : host.HealthStatus)
                            : (flags & HostHealthFlags.DegradedEdsHealth) != 0 ? CoreHealthStatus.Degraded : CoreHealthStatus.Healthy,
                    },
                };
                Metric(hostStatus, "cx_active", host.ActiveConnections, gauge: true);
                Metric(hostStatus, "cx_connect_fail", host.ConnectFailures, gauge: false);
                Metric(hostStatus, "cx_total", host.TotalConnections, gauge: false);
                Metric(hostStatus, "rq_active", host.ActiveRequests, gauge: true);
                Metric(hostStatus, "rq_error", host.Errors, gauge: false);
                Metric(hostStatus, "rq_success", host.Successes, gauge: false);
                Metric(hostStatus, "rq_timeout", host.Timeouts, gauge: false);
                Metric(hostStatus, "rq_total", host.TotalRequests, gauge: false);
                if (host.OutlierMonitor is { SuccessRate: >= 0 } monitor)
                {
                    hostStatus.SuccessRate = new Percent { Value = monitor.SuccessRate };
                }

                if (host.OutlierMonitor is { LocalOriginSuccessRate: >= 0 } local)
                {
                    hostStatus.LocalOriginSuccessRate = new Percent { Value = local.LocalOriginSuccessRate };
                }

                status.HostStatuses.Add(hostStatus);
            }

            result.ClusterStatuses.Add(status);
        }

        return result;
    }

    private static CircuitBreakersConfig.Types.Thresholds Thresholds(RoutingPriority priority, ResourceManager resources) => new()
    {
        Priority = priority,
        MaxConnections = (uint)Math.Min(resources.Connections.Max, uint.MaxValue),
        MaxPendingRequests = (uint)Math.Min(resources.PendingRequests.Max, uint.MaxValue),
        MaxRequests = (uint)Math.Min(resources.Requests.Max, uint.MaxValue),
        MaxRetries = (uint)Math.Min(resources.Retries.Max, uint.MaxValue),
    };

    private static void Metric(HostStatus status, string name, long value, bool gauge) =>
        status.Stats.Add(new SimpleMetric { Name = name, Value = (ulong)Math.Max(0, value), Type = gauge ? SimpleMetric.Types.Type.Gauge : SimpleMetric.Types.Type.Counter });

    private static bool IsCanary(Host host) =>
        host.Metadata is { } metadata && metadata.FilterMetadata.TryGetValue("envoy.lb", out var lb)
        && lb.Fields.TryGetValue("canary", out var canary) && canary.BoolValue;

    private static void Line(StringBuilder sb, string cluster, string part, string field, string value) =>
        sb.Append(cluster).Append("::").Append(part).Append("::").Append(field).Append("::").Append(value).Append('\n');

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Rate(double? rate) => rate is >= 0 ? rate.Value.ToString(CultureInfo.InvariantCulture) : "-1";
}
