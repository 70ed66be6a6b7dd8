using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Http;
using BufferConfig = Envoy.Extensions.Filters.Http.Buffer.V3.Buffer;
using BufferPerRoute = Envoy.Extensions.Filters.Http.Buffer.V3.BufferPerRoute;

namespace Legate.Extensions.Filters.Http.Buffer;

/// <summary>The compiled <c>envoy.filters.http.buffer</c> config: creates a <see cref="BufferFilter"/> per stream.</summary>
internal sealed class BufferFilterFactory : HttpFilterFactory
{
    private BufferFilterFactory(string name, BufferSettings settings)
        : base(name) => Settings = settings;

    public BufferSettings Settings { get; }

    public static HttpFilterFactory? Create(string name, IMessage config, string path, ConfigErrors errors, HttpFilterFactoryContext context) =>
        Compile((BufferConfig)config, path, errors) is { } settings ? new BufferFilterFactory(name, settings) : null;

    /// <summary>A route's BufferPerRoute; null when <paramref name="typeName"/> is another filter's config.</summary>
    public static object? CreatePerRoute(string typeName, Any config, string path, ConfigErrors errors)
    {
        if (typeName != BufferPerRoute.Descriptor.FullName)
        {
            return null;
        }

        var perRoute = BufferPerRoute.Parser.ParseFrom(config.Value);
        switch (perRoute.OverrideCase)
        {
            case BufferPerRoute.OverrideOneofCase.Disabled when perRoute.Disabled:
                return BufferSettings.Disabled;
            case BufferPerRoute.OverrideOneofCase.Buffer:
                return Compile(perRoute.Buffer, FieldPath.Field(path, "buffer"), errors);
            default:
                errors.Add(path, "one of disabled (true) or buffer is required");
                return null;
        }
    }

    public override HttpFilter CreateFilter() => new BufferFilter(this);

    private static BufferSettings? Compile(BufferConfig config, string path, ConfigErrors errors)
    {
        if (config.MaxRequestBytes is not { } max || max == 0)
        {
            errors.Add(FieldPath.Field(path, "max_request_bytes"), "is required and must be greater than 0");
            return null;
        }

        return new BufferSettings(max);
    }
}
