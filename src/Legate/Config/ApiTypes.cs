using System.Reflection;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Legate.Config;

/// <summary>
/// Every message type generated from the Envoy API snapshot, by full name and by type URL.
/// Built lazily on first use: creating all ~490 file descriptors costs about a second under JIT,
/// which a server that never sees an <c>Any</c> should not pay at start-up.
/// </summary>
internal static class ApiTypes
{
    public const string TypeUrlPrefix = "type.googleapis.com/";

    private static readonly Lazy<Catalog> s_catalog = new(Build, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>A <see cref="Google.Protobuf.Reflection.TypeRegistry"/> holding every generated message, for JSON output of <c>Any</c>.</summary>
    public static TypeRegistry Registry => s_catalog.Value.Registry;

    /// <summary>Every generated message, by full proto name.</summary>
    public static IReadOnlyDictionary<string, MessageDescriptor> Messages => s_catalog.Value.Messages;

    /// <summary>Finds a message by type URL (<c>type.googleapis.com/envoy.config.cluster.v3.Cluster</c>) or full name.</summary>
    public static MessageDescriptor? FindByTypeUrl(string typeUrl)
    {
        var slash = typeUrl.LastIndexOf('/');
        var name = slash >= 0 ? typeUrl[(slash + 1)..] : typeUrl;
        return s_catalog.Value.Messages.GetValueOrDefault(name);
    }

    public static string TypeUrlOf(MessageDescriptor descriptor) => TypeUrlPrefix + descriptor.FullName;

    /// <summary>Unpacks an <c>Any</c> into its generated message type, or returns null when the type is unknown.</summary>
    public static IMessage? Unpack(Google.Protobuf.WellKnownTypes.Any any)
    {
        var descriptor = FindByTypeUrl(any.TypeUrl);
        if (descriptor?.Parser is null)
        {
            return null;
        }

        return descriptor.Parser.ParseFrom(any.Value);
    }

    private static Catalog Build()
    {
        var files = new List<FileDescriptor>();
        foreach (var assembly in new[] { typeof(global::Envoy.Config.Bootstrap.V3.Bootstrap).Assembly, typeof(Google.Protobuf.WellKnownTypes.Any).Assembly })
        {
            foreach (var type in assembly.GetTypes())
            {
                // protoc emits one static "<File>Reflection" class per .proto with a Descriptor property.
                if (!type.IsAbstract || !type.IsSealed || !type.Name.EndsWith("Reflection", StringComparison.Ordinal))
                {
                    continue;
                }

                var property = type.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static);
                if (property?.PropertyType == typeof(FileDescriptor) && property.GetValue(null) is FileDescriptor file)
                {
                    files.Add(file);
                }
            }
        }

        var messages = new Dictionary<string, MessageDescriptor>(StringComparer.Ordinal);
        void AddAll(IEnumerable<MessageDescriptor> descriptors)
        {
            foreach (var d in descriptors)
            {
                messages.TryAdd(d.FullName, d);
                AddAll(d.NestedTypes);
            }
        }

        foreach (var file in files)
        {
            AddAll(file.MessageTypes);
        }

        return new Catalog(TypeRegistry.FromFiles(files), messages);
    }

    private sealed record Catalog(TypeRegistry Registry, Dictionary<string, MessageDescriptor> Messages);
}
