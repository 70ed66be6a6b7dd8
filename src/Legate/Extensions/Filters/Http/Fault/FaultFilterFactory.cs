using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Http;
using HTTPFault = Envoy.Extensions.Filters.Http.Fault.V3.HTTPFault;

namespace Legate.Extensions.Filters.Http.Fault;

/// <summary>
/// The compiled <c>envoy.filters.http.fault</c> config: creates a <see cref="FaultFilter"/> per
/// stream. A route's <c>typed_per_filter_config</c> HTTPFault replaces these settings on that
/// route (stats and the active-fault gauge stay this factory's).
/// </summary>
internal sealed class FaultFilterFactory : HttpFilterFactory
{
    private FaultFilterFactory(string name, FaultSettings settings, HttpFilterFactoryContext context)
        : base(name)
    {
        Settings = settings;
        Time = context.Time;
        Runtime = context.Runtime;
        Stats = new FaultFilterStats(context.Stats, context.StatPrefix);
    }

    public FaultSettings Settings { get; }

    public TimeProvider Time { get; }

    /// <summary>The server's runtime, read on every request (null only in tests without one).</summary>
    public Legate.Runtime.RuntimeLoader? Runtime { get; }

    public FaultFilterStats Stats { get; }

    public static HttpFilterFactory? Create(string name, IMessage config, string path, ConfigErrors errors, HttpFilterFactoryContext context) =>
        FaultSettings.Compile((HTTPFault)config, path, errors) is { } settings ? new FaultFilterFactory(name, settings, context) : null;

    /// <summary>A route's HTTPFault; null when <paramref name="typeName"/> is another filter's config.</summary>
    public static object? CreatePerRoute(string typeName, Any config, string path, ConfigErrors errors) =>
        typeName == HTTPFault.Descriptor.FullName ? FaultSettings.Compile(HTTPFault.Parser.ParseFrom(config.Value), path, errors) : null;

    public override HttpFilter CreateFilter() => new FaultFilter(this);
}
