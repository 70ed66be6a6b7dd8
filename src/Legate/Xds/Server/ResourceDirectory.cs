using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Server.Logging;

namespace Legate.Xds.Server;

/// <summary>
/// The resources of the management server: every <c>*.yaml</c>, <c>*.yml</c> and <c>*.json</c> file of
/// a directory, each holding a DiscoveryResponse (<c>resources: [...]</c>) or one resource with an
/// <c>@type</c>. Each resource is checked with the client's validator before it is served; a file
/// with an invalid resource is not taken (its previous content stays served) and the reason is logged.
/// </summary>
internal sealed class ResourceDirectory
{
    private readonly string _path;
    private readonly Logger _log;
    private readonly Dictionary<string, List<(XdsResourceType Type, string Name, Any Resource)>> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _texts = new(StringComparer.Ordinal);
    private readonly XdsResourceValidator _validator;

    public ResourceDirectory(string path, Logger log)
    {
        _path = path;
        _log = log;
        _validator = new XdsResourceValidator(() => new HashSet<string>(AllOf(XdsResourceType.Cluster).Keys, StringComparer.Ordinal));
    }

    /// <summary>Re-reads every file; returns true when anything served changed.</summary>
    public bool Reload()
    {
        var before = Snapshot();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(_path).Order(StringComparer.Ordinal))
        {
            var extension = Path.GetExtension(file);
            if (Path.GetFileName(file).StartsWith('.') || !(extension is ".yaml" or ".yml" or ".json"))
            {
                continue;
            }

            seen.Add(file);
            string text;
            try
            {
                text = File.ReadAllText(file);
            }
            catch (IOException ex)
            {
                _log.Warn($"xds-server: cannot read {file}: {ex.Message}");
                continue;
            }

            if (_texts.TryGetValue(file, out var previous) && previous == text)
            {
                // Unchanged file: not parsed and validated again (a directory may hold thousands of resources).
                continue;
            }

            _texts[file] = text;
            if (Load(file, text) is { } resources)
            {
                _files[file] = resources;
            }
        }

        foreach (var gone in _files.Keys.Where(f => !seen.Contains(f)).ToList())
        {
            _files.Remove(gone);
        }

        foreach (var gone in _texts.Keys.Where(f => !seen.Contains(f)).ToList())
        {
            _texts.Remove(gone);
        }

        var after = Snapshot();
        return !before.SequenceEqual(after);
    }

    /// <summary>Every resource of <paramref name="type"/> by name (the last file wins a duplicate name).</summary>
    public Dictionary<string, Any> AllOf(XdsResourceType type)
    {
        var result = new Dictionary<string, Any>(StringComparer.Ordinal);
        foreach (var resources in _files.Values)
        {
            foreach (var (resourceType, name, any) in resources)
            {
                if (resourceType == type)
                {
                    result[name] = any;
                }
            }
        }

        return result;
    }

    /// <summary>What is served, to compare before and after a reload (the resources' bytes compared as they are, not copied).</summary>
    private List<(string TypeUrl, string Name, ByteString Value)> Snapshot() =>
        _files.OrderBy(f => f.Key, StringComparer.Ordinal).SelectMany(f => f.Value.Select(r => (r.Type.TypeUrl, r.Name, r.Resource.Value))).ToList();

    private List<(XdsResourceType, string, Any)>? Load(string file, string text)
    {
        var errors = new ConfigErrors();
        var anys = new List<Any>();
        try
        {
            var node = ConfigDocument.Parse(text, ConfigDocument.FormatOf(file));
            var converter = new ProtoConverter(errors, new ConverterOptions { IgnoreUnknownFields = false });
            if (node is ConfigMapping mapping && mapping.Find("resources") is not null)
            {
                anys.AddRange(converter.Convert<DiscoveryResponse>(node).Resources);
            }
            else
            {
                anys.Add(converter.Convert<Any>(node));
            }
        }
        catch (ConfigException ex)
        {
            _log.Warn($"xds-server: {file}: {string.Join("; ", ex.Errors)}");
            return null;
        }

        if (errors.HasErrors)
        {
            _log.Warn($"xds-server: {file}: {string.Join("; ", errors.Errors)}");
            return null;
        }

        var result = new List<(XdsResourceType, string, Any)>();
        foreach (var any in anys)
        {
            if (XdsResourceType.FromTypeUrl(any.TypeUrl) is not { } type)
            {
                _log.Warn($"xds-server: {file}: resource type {any.TypeUrl} is not served (clusters, endpoints, listeners, route configurations, secrets, extension configs and runtimes are)");
                return null;
            }

            var message = _validator.Decode(type, any, out var decodeError);
            var problems = message is null ? null : _validator.Validate(type, message);
            if (message is null || problems!.Count > 0)
            {
                _log.Warn($"xds-server: {file}: invalid {type.Descriptor.Name}: {decodeError ?? XdsResourceValidator.Describe(problems!)}; keeping the file's previous content");
                return null;
            }

            result.Add((type, type.NameOf(message), Any.Pack(message)));
        }

        _log.Info($"xds-server: loaded {file} ({result.Count} resource(s))");
        return result;
    }
}
