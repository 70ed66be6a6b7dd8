using Envoy.Admin.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Admin;

namespace Legate.Xds;

/// <summary>
/// The dynamic sections of <c>/config_dump</c>: dynamic_active_clusters / dynamic_warming_clusters,
/// dynamic_listeners (active and warming states), dynamic_route_configs, dynamic_active_secrets /
/// dynamic_warming_secrets — each with version_info
/// and last_updated — plus the error_state of each type's last rejected update. The admin's
/// config_dump handler asks for these; secrets are redacted as in the static sections.
/// </summary>
internal static class XdsConfigDump
{
    public static ClustersConfigDump Clusters(XdsManager xds)
    {
        var dump = new ClustersConfigDump();
        if (xds.Find(XdsResourceType.Cluster) is { } subscription)
        {
            dump.VersionInfo = subscription.VersionInfo;
        }

        var error = ErrorState(xds.Find(XdsResourceType.Cluster));
        foreach (var cluster in xds.Cds?.Active ?? [])
        {
            dump.DynamicActiveClusters.Add(new ClustersConfigDump.Types.DynamicCluster
            {
                VersionInfo = cluster.Version,
                Cluster = Any.Pack(Redacted(cluster.Config)),
                LastUpdated = Timestamp.FromDateTimeOffset(cluster.LastUpdated),
            });
        }

        foreach (var cluster in xds.Cds?.WarmingClusters ?? [])
        {
            dump.DynamicWarmingClusters.Add(new ClustersConfigDump.Types.DynamicCluster
            {
                VersionInfo = cluster.Version,
                Cluster = Any.Pack(Redacted(cluster.Config)),
                LastUpdated = Timestamp.FromDateTimeOffset(cluster.LastUpdated),
            });
        }

        if (error is not null)
        {
            // Envoy attaches the error to the resource that failed; a whole rejected update is shown once.
            dump.DynamicActiveClusters.Add(new ClustersConfigDump.Types.DynamicCluster { ErrorState = error });
        }

        return dump;
    }

    public static ListenersConfigDump Listeners(XdsManager xds)
    {
        var dump = new ListenersConfigDump();
        if (xds.Find(XdsResourceType.Listener) is { } subscription)
        {
            dump.VersionInfo = subscription.VersionInfo;
        }

        var byName = new Dictionary<string, ListenersConfigDump.Types.DynamicListener>(StringComparer.Ordinal);
        foreach (var listener in xds.Lds?.Active ?? [])
        {
            byName[listener.Name] = new ListenersConfigDump.Types.DynamicListener
            {
                Name = listener.Name,
                ActiveState = State(listener),
            };
        }

        foreach (var listener in xds.Lds?.WarmingListeners ?? [])
        {
            if (!byName.TryGetValue(listener.Name, out var entry))
            {
                entry = new ListenersConfigDump.Types.DynamicListener { Name = listener.Name };
                byName[listener.Name] = entry;
            }

            entry.WarmingState = State(listener);
        }

        foreach (var entry in byName.Values.OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            dump.DynamicListeners.Add(entry);
        }

        if (ErrorState(xds.Find(XdsResourceType.Listener)) is { } error)
        {
            dump.DynamicListeners.Add(new ListenersConfigDump.Types.DynamicListener { ErrorState = error });
        }

        return dump;
    }

    public static RoutesConfigDump Routes(XdsManager xds)
    {
        var dump = new RoutesConfigDump();
        foreach (var provider in xds.RouteProviders)
        {
            if (provider.Config is null)
            {
                continue;
            }

            dump.DynamicRouteConfigs.Add(new RoutesConfigDump.Types.DynamicRouteConfig
            {
                VersionInfo = provider.Version,
                RouteConfig = Any.Pack(Redacted(provider.Config)),
                LastUpdated = Timestamp.FromDateTimeOffset(provider.LastUpdated),
            });
        }

        foreach (var subscription in xds.Subscriptions.Where(s => s.Type == XdsResourceType.RouteConfiguration))
        {
            if (ErrorState(subscription) is { } error)
            {
                dump.DynamicRouteConfigs.Add(new RoutesConfigDump.Types.DynamicRouteConfig { ErrorState = error });
            }
        }

        return dump;
    }

    /// <summary>The HTTP filter configurations ECDS delivered (name, version, last_updated), and the last rejected ECDS update.</summary>
    public static EcdsConfigDump ExtensionConfigs(XdsManager xds, Func<string, bool>? wanted = null)
    {
        var dump = new EcdsConfigDump();
        foreach (var entry in xds.ExtensionConfigs.OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            if (entry.Config is { } config && (wanted is null || wanted(entry.Name)))
            {
                dump.EcdsFilters.Add(new EcdsConfigDump.Types.EcdsFilterConfig
                {
                    VersionInfo = entry.Version,
                    EcdsFilter = Any.Pack(Redacted(config)),
                    LastUpdated = Timestamp.FromDateTimeOffset(entry.LastUpdated),
                });
            }
        }

        foreach (var subscription in xds.Subscriptions.Where(s => s.Type == XdsResourceType.ExtensionConfig))
        {
            if (ErrorState(subscription) is { } error)
            {
                dump.EcdsFilters.Add(new EcdsConfigDump.Types.EcdsFilterConfig { ErrorState = error });
            }
        }

        return dump;
    }

    /// <summary>
    /// dynamic_endpoint_configs (<c>?include_eds</c>): every ClusterLoadAssignment accepted over
    /// EDS, with its version and when it last changed.
    /// </summary>
    public static EndpointsConfigDump Endpoints(XdsManager xds, Func<string, bool>? wanted = null)
    {
        var dump = new EndpointsConfigDump();
        foreach (var subscription in xds.Subscriptions.Where(s => s.Type == XdsResourceType.Endpoint))
        {
            foreach (var resource in subscription.Resources.Values.OrderBy(r => r.Name, StringComparer.Ordinal))
            {
                if (wanted is null || wanted(resource.Name))
                {
                    dump.DynamicEndpointConfigs.Add(new EndpointsConfigDump.Types.DynamicEndpointConfig
                    {
                        VersionInfo = resource.Version,
                        EndpointConfig = Any.Pack(resource.Message),
                        LastUpdated = Timestamp.FromDateTimeOffset(resource.LastUpdated),
                    });
                }
            }
        }

        return dump;
    }

    /// <summary>
    /// dynamic_active_secrets (the secrets xDS delivered, private keys redacted) and
    /// dynamic_warming_secrets (names asked for that have not arrived), plus the last rejected
    /// SDS update of each source.
    /// </summary>
    public static SecretsConfigDump Secrets(XdsManager xds, Func<string, bool>? wanted = null)
    {
        var dump = new SecretsConfigDump();
        foreach (var entry in xds.Secrets.OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            if (wanted is not null && !wanted(entry.Name))
            {
                continue;
            }

            if (entry.Config is { } secret)
            {
                dump.DynamicActiveSecrets.Add(new SecretsConfigDump.Types.DynamicSecret
                {
                    Name = entry.Name,
                    VersionInfo = entry.Version,
                    LastUpdated = Timestamp.FromDateTimeOffset(entry.LastUpdated),
                    Secret = Any.Pack(Redacted(secret)),
                });
            }
            else
            {
                dump.DynamicWarmingSecrets.Add(new SecretsConfigDump.Types.DynamicSecret { Name = entry.Name });
            }
        }

        foreach (var subscription in xds.Subscriptions.Where(s => s.Type == XdsResourceType.Secret))
        {
            if (ErrorState(subscription) is { } error)
            {
                dump.DynamicActiveSecrets.Add(new SecretsConfigDump.Types.DynamicSecret { ErrorState = error });
            }
        }

        return dump;
    }

    /// <summary>Adds the clusters, listeners and routes sections (only those xDS has something for).</summary>
    public static void AddTo(ConfigDump dump, XdsManager xds)
    {
        dump.Configs.Add(Any.Pack(Clusters(xds)));
        dump.Configs.Add(Any.Pack(Listeners(xds)));
        dump.Configs.Add(Any.Pack(Routes(xds)));
    }

    private static ListenersConfigDump.Types.DynamicListenerState State(LdsApi.DynamicListener listener) => new()
    {
        VersionInfo = listener.Version,
        Listener = Any.Pack(Redacted(listener.Config)),
        LastUpdated = Timestamp.FromDateTimeOffset(listener.LastUpdated),
    };

    private static UpdateFailureState? ErrorState(XdsSubscription? subscription) =>
        subscription?.ErrorState is { } state
            ? new UpdateFailureState
            {
                Details = state.Details,
                VersionInfo = state.RejectedVersion,
                LastUpdateAttempt = Timestamp.FromDateTimeOffset(state.LastUpdateAttempt),
            }
            : null;

    private static T Redacted<T>(T message)
        where T : Google.Protobuf.IMessage<T>
    {
        var copy = message.Clone();
        SensitiveFieldRedactor.Redact(copy);
        return copy;
    }
}
