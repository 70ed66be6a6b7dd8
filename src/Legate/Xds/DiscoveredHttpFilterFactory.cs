using Envoy.Config.Core.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Http;
using HcmHttpFilter = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpFilter;

namespace Legate.Xds;

/// <summary>
/// An HTTP filter whose configuration comes over ECDS (<c>config_discovery</c>; Envoy's
/// DynamicFilterConfigProvider): each stream gets a filter from the configuration in force when it
/// starts, so an update changes new streams and leaves running ones alone. Until a configuration
/// arrives the <c>default_config</c> applies, and without one requests are answered 500 (NFCF). A
/// received configuration must have one of <c>type_urls</c> and compile like a static filter,
/// else the update is NACKed.
/// </summary>
internal sealed class DiscoveredHttpFilterFactory : HttpFilterFactory
{
    private readonly HashSet<string> _typeUrls;
    private readonly HttpFilterFactory? _default;
    private readonly HttpFilterFactoryContext _context;
    private readonly string _path;
    private HttpFilterFactory? _current;
    private EcdsDispatcher.Entry? _entry;
    private int _released;

    public DiscoveredHttpFilterFactory(string name, ExtensionConfigSource source, HttpFilterFactory? defaultFactory, HttpFilterFactoryContext context, string path)
        : base(name)
    {
        _typeUrls = new HashSet<string>(source.TypeUrls, StringComparer.Ordinal);
        _default = defaultFactory;
        _current = defaultFactory;
        _context = context;
        _path = path;
        WaitsForConfig = !(source.ApplyDefaultConfigWithoutWarming && defaultFactory is not null);
    }

    /// <summary>False with apply_default_config_without_warming: the listener does not wait for the first configuration.</summary>
    public bool WaitsForConfig { get; }

    /// <summary>Completes at the first configuration (or the initial fetch timeout): a listener using the filter warms until then.</summary>
    public Task Ready => WaitsForConfig && _entry is { } entry ? entry.Ready : Task.CompletedTask;

    /// <summary>The configuration in force (null: the default one, or none).</summary>
    public HttpFilterFactory? Current => Volatile.Read(ref _current);

    internal void Bind(EcdsDispatcher.Entry entry) => _entry = entry;

    public override HttpFilter CreateFilter() => Volatile.Read(ref _current)?.CreateFilter() ?? new MissingFilterConfigFilter();

    /// <summary>
    /// Compiles <paramref name="config"/> for this filter without putting it in force; null with
    /// <paramref name="error"/> when its type is not one of type_urls or it does not compile.
    /// </summary>
    public HttpFilterFactory? Prepare(TypedExtensionConfig config, out string? error)
    {
        var typeUrl = config.TypedConfig?.TypeUrl ?? string.Empty;
        if (!_typeUrls.Contains(typeUrl))
        {
            error = $"filter config has type URL {Any.GetTypeName(typeUrl)} but expect {string.Join(", ", _typeUrls.Select(Any.GetTypeName))}";
            return null;
        }

        var errors = new ConfigErrors();
        var factory = HttpFilterRegistry.Compile(new HcmHttpFilter { Name = Name, TypedConfig = config.TypedConfig }, _path, errors, _context);
        if (factory is null || errors.HasErrors)
        {
            factory?.Release();
            error = errors.HasErrors ? XdsResourceValidator.Describe(errors.Errors) : $"{Any.GetTypeName(typeUrl)} is not an HTTP filter Legate implements";
            return null;
        }

        if (factory.IsTerminal)
        {
            factory.Release();
            error = $"terminal filter {Any.GetTypeName(typeUrl)} cannot be configured through discovery here: it must be the last HTTP filter";
            return null;
        }

        error = null;
        return factory;
    }

    /// <summary>Puts a prepared configuration in force for new streams.</summary>
    public void Commit(HttpFilterFactory factory) => Swap(factory);

    /// <summary>ECDS removed the configuration: back to the default one, or to none.</summary>
    public void Revert() => Swap(_default);

    public override void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            return;
        }

        _entry?.Release(this);
        var current = Interlocked.Exchange(ref _current, null);
        if (current is not null && !ReferenceEquals(current, _default))
        {
            current.Release();
        }

        _default?.Release();
    }

    private void Swap(HttpFilterFactory? factory)
    {
        var old = Interlocked.Exchange(ref _current, factory);
        if (old is not null && !ReferenceEquals(old, _default) && !ReferenceEquals(old, factory))
        {
            old.Release();
        }
    }
}
