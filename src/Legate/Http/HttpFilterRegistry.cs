using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Extensions.Filters.Http.Buffer;
using Legate.Extensions.Filters.Http.Fault;
using Legate.Router;
using HcmHttpFilter = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpFilter;

namespace Legate.Http;

/// <summary>
/// Envoy's HTTP filter extensions that Legate implements, by config message: one line per
/// extension. A registration compiles the filter's config into a factory and, when the filter
/// has one, its per-route config (<c>typed_per_filter_config</c>).
/// </summary>
internal static class HttpFilterRegistry
{
    private static readonly Dictionary<string, Registration> s_byType = new(StringComparer.Ordinal)
    {
        [Envoy.Extensions.Filters.Http.Router.V3.Router.Descriptor.FullName] =
            new(Envoy.Extensions.Filters.Http.Router.V3.Router.Parser, RouterFilterFactory.Create, null),
        [Envoy.Extensions.Filters.Http.Fault.V3.HTTPFault.Descriptor.FullName] =
            new(Envoy.Extensions.Filters.Http.Fault.V3.HTTPFault.Parser, FaultFilterFactory.Create, FaultFilterFactory.CreatePerRoute),
        [Envoy.Extensions.Filters.Http.Buffer.V3.Buffer.Descriptor.FullName] =
            new(Envoy.Extensions.Filters.Http.Buffer.V3.Buffer.Parser, BufferFilterFactory.Create, BufferFilterFactory.CreatePerRoute),
        [Envoy.Extensions.Filters.Http.Tap.V3.Tap.Descriptor.FullName] =
            new(Envoy.Extensions.Filters.Http.Tap.V3.Tap.Parser, Legate.Extensions.Filters.Http.Tap.TapFilterFactory.Create, null),
    };

    /// <summary>Compiles one <c>http_filters</c> entry; null when it has errors or is an optional filter Legate lacks.</summary>
    public static HttpFilterFactory? Compile(HcmHttpFilter filter, string path, ConfigErrors errors, HttpFilterFactoryContext context)
    {
        if (filter.ConfigDiscovery is not null)
        {
            if (context.Ecds is null)
            {
                errors.Add(FieldPath.Field(path, "config_discovery"), "extension config discovery (ECDS) needs the server's xDS client");
                return null;
            }

            return context.Ecds.CreateDiscoveredFilter(filter, path, errors, context);
        }

        if (filter.TypedConfig is not { } any)
        {
            // The extension checker resolved a name-only filter already; only the router has an empty config.
            return filter.Name is "envoy.filters.http.router" or "envoy.router"
                ? RouterFilterFactory.Create(filter.Name, new Envoy.Extensions.Filters.Http.Router.V3.Router(), path, errors, context)
                : null;
        }

        var typeName = Any.GetTypeName(any.TypeUrl);
        if (!s_byType.TryGetValue(typeName, out var registration))
        {
            // The loader's extension check reported it (error, or a warning for is_optional filters).
            return null;
        }

        var config = registration.Parser.ParseFrom(any.Value);
        return registration.Create(filter.Name, config, FieldPath.Field(path, "typed_config"), errors, context);
    }

    /// <summary>
    /// Compiles one <c>typed_per_filter_config</c> value for the filter named <paramref name="filterName"/>;
    /// null when the filter has no per-route config of that type (an error is added).
    /// </summary>
    public static object? CompilePerRoute(string filterName, Any config, string path, ConfigErrors errors)
    {
        var typeName = Any.GetTypeName(config.TypeUrl);
        if (typeName == "envoy.config.route.v3.FilterConfig")
        {
            // FilterConfig{config, is_optional, disabled}: only "disabled" is common enough to honour now.
            var wrapper = Envoy.Config.Route.V3.FilterConfig.Parser.ParseFrom(config.Value);
            if (wrapper.Disabled)
            {
                return DisabledFilterConfig.Instance;
            }

            return wrapper.Config is { } inner ? CompilePerRoute(filterName, inner, FieldPath.Field(path, "config"), errors) : null;
        }

        foreach (var registration in s_byType.Values)
        {
            if (registration.CreatePerRoute is { } createPerRoute && createPerRoute(typeName, config, path, errors) is { } compiled)
            {
                return compiled;
            }
        }

        // The extension checker has already rejected unknown or unimplemented types.
        return null;
    }

    private sealed record Registration(
        MessageParser Parser,
        Func<string, IMessage, string, ConfigErrors, HttpFilterFactoryContext, HttpFilterFactory?> Create,
        Func<string, Any, string, ConfigErrors, object?>? CreatePerRoute);
}

/// <summary>A per-route <c>FilterConfig</c> with <c>disabled: true</c>: the filter is skipped on that route.</summary>
internal sealed class DisabledFilterConfig
{
    public static DisabledFilterConfig Instance { get; } = new();

    private DisabledFilterConfig()
    {
    }
}
