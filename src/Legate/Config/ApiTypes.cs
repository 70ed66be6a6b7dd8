using System.Collections.Concurrent;
using System.Reflection;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Legate.Config;

/// <summary>
/// Every message type generated from the Envoy API snapshot, by full name and by type URL.
/// Creating all ~490 file descriptors costs about 1.5 s at start-up (reflection and JIT for every
/// field accessor), so a type URL is resolved on its own: its generated class is found by protoc's
/// C# naming rules and only its file (and the files it imports) get descriptors. The complete
/// catalog is built only when something needs every type (the JSON type registry) or a name does
/// not resolve that way (an unknown type URL, an error path anyway).
/// </summary>
internal static class ApiTypes
{
    public const string TypeUrlPrefix = "type.googleapis.com/";

    private static readonly Lazy<Catalog> s_catalog = new(Build, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly ConcurrentDictionary<string, MessageDescriptor?> s_byName = new(StringComparer.Ordinal);

    /// <summary>A <see cref="Google.Protobuf.Reflection.TypeRegistry"/> holding every generated message, for JSON output of <c>Any</c>.</summary>
    public static TypeRegistry Registry => s_catalog.Value.Registry;

    /// <summary>Every generated message, by full proto name.</summary>
    public static IReadOnlyDictionary<string, MessageDescriptor> Messages => s_catalog.Value.Messages;

    /// <summary>Finds a message by type URL (<c>type.googleapis.com/envoy.config.cluster.v3.Cluster</c>) or full name.</summary>
    public static MessageDescriptor? FindByTypeUrl(string typeUrl)
    {
        var slash = typeUrl.LastIndexOf('/');
        var name = slash >= 0 ? typeUrl[(slash + 1)..] : typeUrl;
        return s_byName.GetOrAdd(name, static n => ResolveByNamingRules(n) ?? s_catalog.Value.Messages.GetValueOrDefault(n));
    }

    /// <summary>
    /// Finds the generated class of a proto message by protoc's C# rules: package parts in
    /// PascalCase (a letter after '_' or a digit is capitalised: <c>grpc_http1_bridge.v3alpha</c> →
    /// <c>GrpcHttp1Bridge.V3Alpha</c>), nested messages under <c>Types</c>. Verified against the
    /// descriptor's own full name, so a miss only costs the slow path.
    /// </summary>
    internal static MessageDescriptor? ResolveByNamingRules(string fullName)
    {
        var parts = fullName.Split('.');
        var first = Array.FindIndex(parts, p => p.Length > 0 && char.IsUpper(p[0]));
        if (first <= 0)
        {
            return null;
        }

        Assembly assembly;
        string ns;
        if (fullName.StartsWith("google.protobuf.", StringComparison.Ordinal))
        {
            assembly = typeof(Google.Protobuf.WellKnownTypes.Any).Assembly;
            ns = "Google.Protobuf.WellKnownTypes";
        }
        else
        {
            assembly = typeof(global::Envoy.Config.Bootstrap.V3.Bootstrap).Assembly;
            var builder = new StringBuilder();
            for (var i = 0; i < first; i++)
            {
                builder.Append(i == 0 ? "" : ".").Append(PascalCase(parts[i]));
            }

            ns = builder.ToString();
        }

        var nested = string.Join("+Types+", parts, first, parts.Length - first);
        var type = assembly.GetType(ns + "." + nested, throwOnError: false);
        if (type is null && ns == "Google.Protobuf.WellKnownTypes")
        {
            // descriptor.proto's messages live in the runtime's reflection namespace.
            type = assembly.GetType("Google.Protobuf.Reflection." + nested, throwOnError: false);
        }

        var descriptor = type?.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) as MessageDescriptor;
        return descriptor?.FullName == fullName ? descriptor : null;
    }

    private static string PascalCase(string part)
    {
        var builder = new StringBuilder(part.Length);
        var capitalizeNext = true;
        foreach (var c in part)
        {
            if (char.IsAsciiLetterLower(c))
            {
                builder.Append(capitalizeNext ? char.ToUpperInvariant(c) : c);
                capitalizeNext = false;
            }
            else if (char.IsAsciiLetterUpper(c))
            {
                builder.Append(c);
                capitalizeNext = false;
            }
            else if (char.IsAsciiDigit(c))
            {
                builder.Append(c);
                capitalizeNext = true;
            }
            else
            {
                capitalizeNext = true;
            }
        }

        return builder.ToString();
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
