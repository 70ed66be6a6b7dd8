using System.Text.RegularExpressions;
using Envoy.Admin.V3;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Server;
using Microsoft.AspNetCore.Http;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Legate.Admin;

/// <summary>
/// <c>/config_dump</c>: the configuration in effect as Envoy's <c>ConfigDump</c>, in Envoy's
/// order of typed sections — BootstrapConfigDump, ClustersConfigDump (static_clusters),
/// [EndpointsConfigDump with <c>?include_eds</c>: static and EDS endpoints], ListenersConfigDump (static_listeners),
/// RoutesConfigDump (static_route_configs: the route configs written inline in connection
/// managers), SecretsConfigDump (static_secrets, dynamic_active_secrets, dynamic_warming_secrets) — each entry with its last_updated, secrets
/// redacted. <c>?resource=</c> returns the elements of one repeated field, <c>?mask=</c> keeps
/// only the listed fields, <c>?name_regex=</c> keeps the named resources whose name matches.
/// With xDS, the dynamic entries (dynamic_active/warming clusters, dynamic_listeners,
/// dynamic_route_configs, with version_info and error_state) join the same sections.
/// </summary>
internal sealed class ConfigDumpHandler
{
    private readonly IServerInstance _server;
    private readonly Lazy<string> _json;

    public ConfigDumpHandler(IServerInstance server)
    {
        _server = server;

        // The static configuration never changes while the server runs: build the plain answer once.
        _json = new Lazy<string>(() => ProtoJson.Format(Build()), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public ValueTask<AdminResponse> HandleAsync(HttpContext context)
    {
        var query = context.Request.Query;
        var resource = query["resource"].ToString();
        var mask = query["mask"].ToString();
        var nameRegexText = query["name_regex"].ToString();
        var includeEds = query.ContainsKey("include_eds");
        // Dynamic resources change while the server runs: with xDS every dump is built per request.
        if (resource.Length == 0 && mask.Length == 0 && nameRegexText.Length == 0 && !includeEds && _server.Xds is not { IsActive: true })
        {
            return ValueTask.FromResult(AdminResponse.Json(_json.Value));
        }

        Regex? nameRegex = null;
        if (nameRegexText.Length > 0)
        {
            try
            {
                nameRegex = new Regex(nameRegexText, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException)
            {
                return ValueTask.FromResult(AdminResponse.Text("Error while parsing name_regex from request", StatusCodes.Status400BadRequest));
            }
        }

        var fieldMask = mask.Length == 0 ? null : new FieldMask { Paths = { mask.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) } };
        var dump = Build(includeEds, nameRegex);
        if (resource.Length > 0)
        {
            var selected = new ConfigDump();
            var found = false;
            foreach (var config in dump.Configs)
            {
                var message = Unpack(config);
                if (message.Descriptor.FindFieldByName(resource) is not { IsRepeated: true, FieldType: FieldType.Message } field)
                {
                    continue;
                }

                found = true;
                foreach (IMessage element in (System.Collections.IList)field.Accessor.GetValue(message))
                {
                    selected.Configs.Add(Any.Pack(Trim(element, fieldMask)));
                }
            }

            if (!found)
            {
                return ValueTask.FromResult(AdminResponse.Text($"{resource} not found in config dump", StatusCodes.Status404NotFound));
            }

            return ValueTask.FromResult(AdminResponse.Json(ProtoJson.Format(selected)));
        }

        if (fieldMask is not null)
        {
            var trimmed = new ConfigDump();
            foreach (var config in dump.Configs)
            {
                trimmed.Configs.Add(Any.Pack(Trim(Unpack(config), fieldMask)));
            }

            dump = trimmed;
        }

        return ValueTask.FromResult(AdminResponse.Json(ProtoJson.Format(dump)));
    }

    public ConfigDump Build(bool includeEds = false, Regex? nameRegex = null)
    {
        var bootstrap = _server.Bootstrap.Clone();
        SensitiveFieldRedactor.Redact(bootstrap);
        var loaded = Timestamp.FromDateTimeOffset(_server.ConfigLoadedAt);
        bool Wanted(string name) => nameRegex is null || nameRegex.IsMatch(name);

        var dump = new ConfigDump();
        dump.Configs.Add(Any.Pack(new BootstrapConfigDump { Bootstrap = bootstrap, LastUpdated = loaded }));

        var clusters = new ClustersConfigDump();
        var endpoints = new EndpointsConfigDump();
        foreach (var cluster in bootstrap.StaticResources?.Clusters ?? [])
        {
            if (!Wanted(cluster.Name))
            {
                continue;
            }

            clusters.StaticClusters.Add(new ClustersConfigDump.Types.StaticCluster { Cluster = Any.Pack(cluster), LastUpdated = loaded });
            if (cluster.LoadAssignment is { } assignment)
            {
                var copy = assignment.Clone();
                if (copy.ClusterName.Length == 0)
                {
                    copy.ClusterName = cluster.Name;
                }

                endpoints.StaticEndpointConfigs.Add(new EndpointsConfigDump.Types.StaticEndpointConfig { EndpointConfig = Any.Pack(copy), LastUpdated = loaded });
            }
        }

        var xds = _server.Xds is { IsActive: true } active ? active : null;
        if (xds is not null)
        {
            clusters.MergeFrom(Legate.Xds.XdsConfigDump.Clusters(xds));
            endpoints.MergeFrom(Legate.Xds.XdsConfigDump.Endpoints(xds, Wanted));
        }

        dump.Configs.Add(Any.Pack(clusters));
        if (includeEds)
        {
            dump.Configs.Add(Any.Pack(endpoints));
        }

        // Envoy's ecds_filter_http section: present only when a filter is configured over ECDS.
        if (xds is not null && Legate.Xds.XdsConfigDump.ExtensionConfigs(xds, Wanted) is { EcdsFilters.Count: > 0 } ecds)
        {
            dump.Configs.Add(Any.Pack(ecds));
        }

        var listeners = new ListenersConfigDump();
        var routes = new RoutesConfigDump();
        foreach (var listener in bootstrap.StaticResources?.Listeners ?? [])
        {
            if (Wanted(listener.Name))
            {
                listeners.StaticListeners.Add(new ListenersConfigDump.Types.StaticListener { Listener = Any.Pack(listener), LastUpdated = loaded });
            }

            foreach (var chain in listener.FilterChains.Append(listener.DefaultFilterChain))
            {
                foreach (var filter in chain?.Filters ?? [])
                {
                    if (filter.TypedConfig is { } any && any.Is(Hcm.Descriptor) && any.Unpack<Hcm>().RouteConfig is { } routeConfig && Wanted(routeConfig.Name))
                    {
                        routes.StaticRouteConfigs.Add(new RoutesConfigDump.Types.StaticRouteConfig { RouteConfig = Any.Pack(routeConfig), LastUpdated = loaded });
                    }
                }
            }
        }

        if (xds is not null)
        {
            listeners.MergeFrom(Legate.Xds.XdsConfigDump.Listeners(xds));
            routes.MergeFrom(Legate.Xds.XdsConfigDump.Routes(xds));
        }

        dump.Configs.Add(Any.Pack(listeners));
        dump.Configs.Add(Any.Pack(routes));

        var secrets = new SecretsConfigDump();
        foreach (var secret in bootstrap.StaticResources?.Secrets ?? [])
        {
            if (Wanted(secret.Name))
            {
                secrets.StaticSecrets.Add(new SecretsConfigDump.Types.StaticSecret { Name = secret.Name, Secret = Any.Pack(secret), LastUpdated = loaded });
            }
        }

        if (xds is not null)
        {
            secrets.MergeFrom(Legate.Xds.XdsConfigDump.Secrets(xds, Wanted));
        }

        dump.Configs.Add(Any.Pack(secrets));
        return dump;
    }

    private static IMessage Unpack(Any any) =>
        ApiTypes.FindByTypeUrl(any.TypeUrl) is { } descriptor ? descriptor.Parser.ParseFrom(any.Value) : any;

    /// <summary>
    /// Keeps only the fields <paramref name="mask"/> names (Envoy's trimming): dotted paths go
    /// into sub-messages, into every element of a repeated field, and through <c>Any</c> values
    /// (so <c>cluster.name</c> reaches the name inside a packed Cluster).
    /// </summary>
    private static IMessage Trim(IMessage message, FieldMask? mask)
    {
        if (mask is null)
        {
            return message;
        }

        var tree = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var path in mask.Paths)
        {
            var node = tree;
            foreach (var part in path.Split('.'))
            {
                if (!node.TryGetValue(part, out var child))
                {
                    child = new Dictionary<string, object>(StringComparer.Ordinal);
                    node[part] = child;
                }

                node = (Dictionary<string, object>)child;
            }
        }

        return Trim(message, tree);
    }

    private static IMessage Trim(IMessage message, Dictionary<string, object> tree)
    {
        if (message is Any any)
        {
            if (ApiTypes.FindByTypeUrl(any.TypeUrl) is not { } descriptor)
            {
                return message;
            }

            return Any.Pack(Trim(descriptor.Parser.ParseFrom(any.Value), tree));
        }

        var trimmed = message.Descriptor.Parser.ParseFrom(ByteString.Empty);
        foreach (var (name, childObject) in tree)
        {
            if (message.Descriptor.FindFieldByName(name) is not { } field)
            {
                continue;
            }

            var child = (Dictionary<string, object>)childObject;
            var value = field.Accessor.GetValue(message);
            if (field.IsMap)
            {
                var target = (System.Collections.IDictionary)field.Accessor.GetValue(trimmed);
                foreach (System.Collections.DictionaryEntry entry in (System.Collections.IDictionary)value)
                {
                    target[entry.Key] = entry.Value;
                }
            }
            else if (field.IsRepeated)
            {
                var target = (System.Collections.IList)field.Accessor.GetValue(trimmed);
                foreach (var element in (System.Collections.IList)value)
                {
                    target.Add(child.Count > 0 && element is IMessage m ? Trim(m, child) : element);
                }
            }
            else if (value is IMessage sub && child.Count > 0)
            {
                field.Accessor.SetValue(trimmed, Trim(sub, child));
            }
            else if (field.HasPresence ? field.Accessor.HasValue(message) : value is not null)
            {
                field.Accessor.SetValue(trimmed, value);
            }
        }

        return trimmed;
    }
}
