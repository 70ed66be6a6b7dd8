using System.Text;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Legate.Config;

namespace Legate.Http;

/// <summary>
/// What one route does when it matches (matching itself is <c>Router/Matching</c>'s): a direct
/// response, or forwarding to a cluster (the router filter's job), with the route's filter configs.
/// </summary>
internal sealed class RouteEntry
{
    /// <summary>Envoy's default route timeout.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    private int _notImplementedLogged;
    private Dictionary<string, object>? _filterConfigs;

    private RouteEntry(string name, string virtualHostName, RouteActionKind action, int status, byte[] body, string actionName)
    {
        Name = name;
        VirtualHostName = virtualHostName;
        Action = action;
        Status = status;
        Body = body;
        ActionName = actionName;
    }

    public string Name { get; }

    public string VirtualHostName { get; }

    /// <summary>The target cluster of a route action.</summary>
    public string ClusterName { get; private set; } = string.Empty;

    /// <summary>The route timeout; <see cref="TimeSpan.Zero"/> disables it.</summary>
    public TimeSpan Timeout { get; private set; } = DefaultTimeout;

    /// <summary>The route timeout in milliseconds as header value bytes (x-envoy-expected-rq-timeout-ms).</summary>
    public byte[] ExpectedTimeoutValue { get; private set; } = "15000"u8.ToArray();

    /// <summary>Status when the cluster does not exist (Envoy's <c>cluster_not_found_response_code</c>, default 503).</summary>
    public int ClusterNotFoundStatus { get; private set; } = 503;

    /// <summary>Route-level upgrade overrides (<c>upgrade_configs</c>): upgrade type (lowercase) → enabled.</summary>
    public IReadOnlyDictionary<string, bool>? UpgradeOverrides { get; private set; }

    /// <summary>Whether some filter is disabled on this route (FilterConfig with disabled: true).</summary>
    public bool HasDisabledFilters { get; private set; }

    /// <summary>The compiled <c>typed_per_filter_config</c> of the filter named <paramref name="filterName"/> (route over virtual host), or null.</summary>
    public object? PerFilterConfig(string filterName) =>
        _filterConfigs is not null && _filterConfigs.TryGetValue(filterName, out var config) ? config : null;

    public RouteActionKind Action { get; }

    /// <summary>The route's <c>decorator</c>: names the request's span (and is propagated unless <c>propagate: false</c>).</summary>
    public Envoy.Config.Route.V3.Decorator? Decorator { get; private set; }

    /// <summary>The status of a direct response.</summary>
    public int Status { get; }

    /// <summary>The body of a direct response (empty when none).</summary>
    public byte[] Body { get; }

    /// <summary>The action's proto field name (<c>route</c>, <c>redirect</c>, …), for messages.</summary>
    public string ActionName { get; }

    /// <summary>True the first time it is called: lets the connection manager log an unimplemented action once.</summary>
    public bool FirstNotImplementedHit() => Interlocked.Exchange(ref _notImplementedLogged, 1) == 0;

    public static RouteEntry Compile(Route route, string path, uint maxBodyBytes, VirtualHost virtualHost, Dictionary<string, object>? virtualHostFilterConfigs, ConfigErrors errors)
    {
        var action = RouteActionKind.NotImplemented;
        var status = 0;
        var body = Array.Empty<byte>();
        RouteAction? forward = null;
        if (route.ActionCase == Route.ActionOneofCase.Route_)
        {
            forward = route.Route_;
            if (forward.ClusterSpecifierCase == RouteAction.ClusterSpecifierOneofCase.Cluster)
            {
                action = RouteActionKind.Forward;
            }
        }
        else if (route.ActionCase == Route.ActionOneofCase.DirectResponse)
        {
            action = RouteActionKind.DirectResponse;
            status = (int)route.DirectResponse.Status;
            var bodyPath = FieldPath.Field(FieldPath.Field(path, "direct_response"), "body");
            body = route.DirectResponse.Body is { } source ? ReadBody(source, bodyPath, maxBodyBytes, errors) : [];
        }
        else if (route.ActionCase == Route.ActionOneofCase.None)
        {
            errors.Add(path, "an action (route, redirect, direct_response, …) is required");
        }

        var entry = new RouteEntry(route.Name, virtualHost.Name, action, status, body, ActionFieldName(route.ActionCase));
        entry.Decorator = route.Decorator;
        if (forward is not null)
        {
            entry.ClusterName = forward.Cluster;
            if (forward.Timeout is { } timeout)
            {
                entry.Timeout = timeout.ToTimeSpan();
                entry.ExpectedTimeoutValue = Encoding.ASCII.GetBytes(((long)entry.Timeout.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            entry.ClusterNotFoundStatus = forward.ClusterNotFoundResponseCode switch
            {
                RouteAction.Types.ClusterNotFoundResponseCode.NotFound => 404,
                RouteAction.Types.ClusterNotFoundResponseCode.InternalServerError => 500,
                _ => 503,
            };
            if (forward.UpgradeConfigs.Count > 0)
            {
                var upgrades = new Dictionary<string, bool>(StringComparer.OrdinalIgnoreCase);
                foreach (var upgrade in forward.UpgradeConfigs)
                {
                    upgrades[upgrade.UpgradeType] = upgrade.Enabled ?? true;
                }

                entry.UpgradeOverrides = upgrades;
            }
        }

        entry._filterConfigs = CompileFilterConfigs(route.TypedPerFilterConfig, FieldPath.Field(path, "typed_per_filter_config"), virtualHostFilterConfigs, errors);
        entry.HasDisabledFilters = entry._filterConfigs?.Values.Any(c => c is DisabledFilterConfig) ?? false;
        return entry;
    }

    /// <summary>Compiles a <c>typed_per_filter_config</c> map over the configs inherited from the enclosing level.</summary>
    public static Dictionary<string, object>? CompileFilterConfigs(
        Google.Protobuf.Collections.MapField<string, Google.Protobuf.WellKnownTypes.Any> configs,
        string path,
        Dictionary<string, object>? inherited,
        ConfigErrors errors)
    {
        if (configs.Count == 0)
        {
            return inherited;
        }

        var merged = inherited is null ? new Dictionary<string, object>(StringComparer.Ordinal) : new Dictionary<string, object>(inherited, StringComparer.Ordinal);
        foreach (var (name, any) in configs)
        {
            if (HttpFilterRegistry.CompilePerRoute(name, any, FieldPath.Key(path, name), errors) is { } compiled)
            {
                merged[name] = compiled;
            }
        }

        return merged;
    }

    private static byte[] ReadBody(DataSource source, string path, uint maxBytes, ConfigErrors errors)
    {
        byte[] body;
        switch (source.SpecifierCase)
        {
            case DataSource.SpecifierOneofCase.InlineString:
                body = Encoding.UTF8.GetBytes(source.InlineString);
                break;
            case DataSource.SpecifierOneofCase.InlineBytes:
                body = source.InlineBytes.ToByteArray();
                break;
            case DataSource.SpecifierOneofCase.Filename:
                try
                {
                    // Envoy reads the file once, when the config is loaded.
                    body = File.ReadAllBytes(source.Filename);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    errors.Add(FieldPath.Field(path, "filename"), $"cannot read \"{source.Filename}\": {ex.Message}");
                    return [];
                }

                break;
            case DataSource.SpecifierOneofCase.EnvironmentVariable:
                var value = Environment.GetEnvironmentVariable(source.EnvironmentVariable);
                if (value is null)
                {
                    errors.Add(FieldPath.Field(path, "environment_variable"), $"environment variable \"{source.EnvironmentVariable}\" is not set");
                    return [];
                }

                body = Encoding.UTF8.GetBytes(value);
                break;
            default:
                return [];
        }

        if (body.Length > maxBytes)
        {
            errors.Add(path, $"direct response body is {body.Length} bytes, more than max_direct_response_body_size_bytes ({maxBytes})");
        }

        return body;
    }

    private static string ActionFieldName(Route.ActionOneofCase action) => action switch
    {
        Route.ActionOneofCase.Route_ => "route",
        Route.ActionOneofCase.Redirect => "redirect",
        Route.ActionOneofCase.DirectResponse => "direct_response",
        Route.ActionOneofCase.FilterAction => "filter_action",
        Route.ActionOneofCase.NonForwardingAction => "non_forwarding_action",
        _ => "none",
    };
}
