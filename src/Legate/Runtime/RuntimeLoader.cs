using System.Globalization;
using System.Text;
using System.Text.Json;
using Envoy.Config.Bootstrap.V3;
using Envoy.Type.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Stats;

namespace Legate.Runtime;

/// <summary>
/// Envoy's runtime (<c>Runtime::Loader</c>): the layers of <c>layered_runtime</c> (static layers
/// from the bootstrap and one admin layer, changed by <c>POST /runtime_modify</c>), merged into an
/// immutable <see cref="RuntimeSnapshot"/> that readers take without a lock; a change builds a
/// new snapshot and swaps one reference. Without <c>layered_runtime</c> Envoy's default applies:
/// a single admin layer called <c>admin</c>. An RTDS layer (<c>rtds_layer</c>) holds what the
/// xDS client last accepted for its resource (<see cref="SetLayer"/>), empty until then; it keeps
/// its place in the layer order, as in Envoy. A disk layer (<c>disk_layer</c>) holds its directory's
/// files (<see cref="DiskLayer"/>), reloaded when its symlink root is swapped (<see cref="WatchDiskLayers"/>).
/// </summary>
internal sealed class RuntimeLoader
{
    private readonly object _adminLock = new();
    private readonly List<RtdsLayerSpec> _rtds = new();
    private readonly Layer[] _layers;
    private readonly int _adminLayer;
    private readonly Gauge _numKeys;
    private readonly Gauge _adminOverridesActive;
    private readonly Counter _loadSuccess;
    private readonly Counter _loadError;
    private readonly List<DiskLayer> _disks = new();
    private volatile RuntimeSnapshot _snapshot;

    private RuntimeLoader(Layer[] layers, StatsStore stats)
    {
        _layers = layers;
        _adminLayer = Array.FindIndex(layers, l => l.IsAdmin);
        _numKeys = stats.Gauge("runtime.num_keys", ImportMode.NeverImport);
        _adminOverridesActive = stats.Gauge("runtime.admin_overrides_active", ImportMode.NeverImport);
        _loadSuccess = stats.Counter("runtime.load_success");
        _loadError = stats.Counter("runtime.load_error");
        stats.Gauge("runtime.num_layers", ImportMode.NeverImport).Set(layers.Length);
        _snapshot = Build();
    }

    public RuntimeSnapshot Snapshot => _snapshot;

    /// <summary>The <c>rtds_layer</c>s, for the xDS client to subscribe (in layer order).</summary>
    public IReadOnlyList<RtdsLayerSpec> RtdsLayers => _rtds;

    /// <summary>Whether <c>/runtime_modify</c> has a layer to write to.</summary>
    public bool HasAdminLayer => _adminLayer >= 0;

    public static RuntimeLoader Create(Bootstrap bootstrap, ConfigErrors errors, StatsStore stats)
    {
        var layers = new List<Layer>();
        if (bootstrap.LayeredRuntime is not { } runtime)
        {
            layers.Add(new Layer("admin", true, new Dictionary<string, string>(StringComparer.Ordinal)));
            return new RuntimeLoader(layers.ToArray(), stats);
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        var rtds = new List<RtdsLayerSpec>();
        var disks = new List<DiskLayer>();
        for (var i = 0; i < runtime.Layers.Count; i++)
        {
            var layer = runtime.Layers[i];
            var path = FieldPath.Index("layered_runtime.layers", i);
            if (!names.Add(layer.Name))
            {
                errors.Add(FieldPath.Field(path, "name"), $"duplicate runtime layer name '{layer.Name}'");
                continue;
            }

            switch (layer.LayerSpecifierCase)
            {
                case RuntimeLayer.LayerSpecifierOneofCase.StaticLayer:
                    var values = new Dictionary<string, string>(StringComparer.Ordinal);
                    Flatten(layer.StaticLayer, string.Empty, values);
                    layers.Add(new Layer(layer.Name, false, values));
                    break;
                case RuntimeLayer.LayerSpecifierOneofCase.AdminLayer:
                    if (layers.Exists(l => l.IsAdmin))
                    {
                        errors.Add(FieldPath.Field(path, "admin_layer"), "too many admin layers specified in LayeredRuntime, at most one may be specified");
                        continue;
                    }

                    layers.Add(new Layer(layer.Name, true, new Dictionary<string, string>(StringComparer.Ordinal)));
                    break;
                case RuntimeLayer.LayerSpecifierOneofCase.RtdsLayer:
                    rtds.Add(new RtdsLayerSpec(layers.Count, layer.RtdsLayer.Name, layer.RtdsLayer.RtdsConfig, FieldPath.Field(path, "rtds_layer")));
                    layers.Add(new Layer(layer.Name, false, new Dictionary<string, string>(StringComparer.Ordinal)));
                    break;
                case RuntimeLayer.LayerSpecifierOneofCase.DiskLayer:
                {
                    var disk = layer.DiskLayer;
                    var directory = Path.Combine(disk.SymlinkRoot, disk.Subdirectory);
                    if (disk.AppendServiceCluster && bootstrap.Node?.Cluster is { Length: > 0 } cluster)
                    {
                        directory = Path.Combine(directory, cluster);
                    }

                    var spec = new DiskLayer(layers.Count, disk.SymlinkRoot, directory);
                    disks.Add(spec);
                    layers.Add(new Layer(layer.Name, false, ReadDisk(spec, errors, FieldPath.Field(path, "disk_layer"))));
                    break;
                }

                default:
                    layers.Add(new Layer(layer.Name, false, new Dictionary<string, string>(StringComparer.Ordinal)));
                    break;
            }
        }

        var loader = new RuntimeLoader(layers.ToArray(), stats);
        loader._rtds.AddRange(rtds);
        loader._disks.AddRange(disks);
        return loader;
    }

    private static Dictionary<string, string> ReadDisk(DiskLayer disk, ConfigErrors errors, string path)
    {
        try
        {
            return disk.Read();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add(path, $"cannot read the runtime directory '{disk.Directory}': {ex.Message}");
            return new Dictionary<string, string>(StringComparer.Ordinal);
        }
    }

    /// <summary>
    /// Starts watching the disk layers' symlink roots: a swap reloads the layer (counted in
    /// <c>runtime.load_success</c>, or <c>runtime.load_error</c> when it cannot be read).
    /// Dispose the result to stop.
    /// </summary>
    public IDisposable WatchDiskLayers()
    {
        var watchers = _disks.Select(d => d.Watch(ReloadDisk)).OfType<FileSystemWatcher>().ToArray();
        return new Watchers(watchers);
    }

    private void ReloadDisk(DiskLayer disk)
    {
        Dictionary<string, string> values;
        try
        {
            values = disk.Read();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A swap in progress or an unreadable tree: the layer keeps its values.
            _loadError.Inc();
            return;
        }

        ReplaceLayer(disk.Index, values);
    }

    private sealed class Watchers(FileSystemWatcher[] watchers) : IDisposable
    {
        public void Dispose()
        {
            foreach (var watcher in watchers)
            {
                watcher.Dispose();
            }
        }
    }

    /// <summary>An RTDS update: the layer at <paramref name="index"/> now holds <paramref name="layer"/>'s values (empty when the resource was removed).</summary>
    public void SetLayer(int index, Struct? layer)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (layer is not null)
        {
            Flatten(layer, string.Empty, values);
        }

        ReplaceLayer(index, values);
    }

    /// <summary>A layer's values replaced (RTDS update, disk layer reload): a new snapshot.</summary>
    private void ReplaceLayer(int index, Dictionary<string, string> values)
    {
        lock (_adminLock)
        {
            _layers[index] = _layers[index] with { Values = values };
            _snapshot = Build();
        }
    }

    /// <summary>
    /// <c>/runtime_modify</c>: sets admin-layer values; an empty value removes the override.
    /// False when there is no admin layer.
    /// </summary>
    public bool Modify(IEnumerable<KeyValuePair<string, string>> values)
    {
        if (_adminLayer < 0)
        {
            return false;
        }

        lock (_adminLock)
        {
            var admin = new Dictionary<string, string>(_layers[_adminLayer].Values, StringComparer.Ordinal);
            foreach (var (key, value) in values)
            {
                if (value.Length == 0)
                {
                    admin.Remove(key);
                }
                else
                {
                    admin[key] = value;
                }
            }

            _layers[_adminLayer] = _layers[_adminLayer] with { Values = admin };
            _snapshot = Build();
        }

        return true;
    }

    /// <summary>Envoy's <c>/runtime</c> JSON: the layer names and, per key, each layer's value and the final one.</summary>
    public string ToJson()
    {
        var layers = _layers;
        var snapshot = _snapshot;
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartArray("layers");
            foreach (var layer in layers)
            {
                json.WriteStringValue(layer.Name);
            }

            json.WriteEndArray();
            json.WriteStartObject("entries");
            foreach (var key in snapshot.Keys)
            {
                json.WriteStartObject(key);
                json.WriteStartArray("layer_values");
                foreach (var layer in layers)
                {
                    json.WriteStringValue(layer.Values.GetValueOrDefault(key, string.Empty));
                }

                json.WriteEndArray();
                json.WriteString("final_value", snapshot.Get(key));
                json.WriteEndObject();
            }

            json.WriteEndObject();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private RuntimeSnapshot Build()
    {
        // Later layers override earlier ones.
        var merged = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var layer in _layers)
        {
            foreach (var (key, value) in layer.Values)
            {
                merged[key] = value;
            }
        }

        _numKeys.Set(merged.Count);
        _adminOverridesActive.Set(_adminLayer >= 0 && _layers[_adminLayer].Values.Count > 0 ? 1 : 0);
        _loadSuccess.Inc();
        return new RuntimeSnapshot(merged);
    }

    /// <summary>Envoy flattens nested static layers into dotted keys; scalars print as strings.</summary>
    private static void Flatten(Struct value, string prefix, Dictionary<string, string> values)
    {
        foreach (var (key, child) in value.Fields)
        {
            var name = prefix.Length == 0 ? key : prefix + "." + key;
            switch (child.KindCase)
            {
                // As Envoy's proto layers: a struct with a numerator or denominator is one
                // FractionalPercent value (kept as its JSON), not a subtree of keys.
                case Value.KindOneofCase.StructValue when IsFractionalPercent(child.StructValue):
                    values[name] = Google.Protobuf.JsonFormatter.Default.Format(child.StructValue);
                    break;
                case Value.KindOneofCase.StructValue:
                    Flatten(child.StructValue, name, values);
                    break;
                case Value.KindOneofCase.StringValue:
                    values[name] = child.StringValue;
                    break;
                case Value.KindOneofCase.BoolValue:
                    values[name] = child.BoolValue ? "true" : "false";
                    break;
                case Value.KindOneofCase.NumberValue:
                    var number = child.NumberValue;
                    values[name] = number == Math.Floor(number) && Math.Abs(number) < 1e15
                        ? ((long)number).ToString(CultureInfo.InvariantCulture)
                        : number.ToString(CultureInfo.InvariantCulture);
                    break;
                default:
                    values[name] = child.ToString();
                    break;
            }
        }
    }

    private static bool IsFractionalPercent(Struct value) =>
        value.Fields.ContainsKey("numerator") || value.Fields.ContainsKey("denominator");

    private sealed record Layer(string Name, bool IsAdmin, IReadOnlyDictionary<string, string> Values);
}

/// <summary>One <c>rtds_layer</c>: its place among the layers, the resource name, where it comes from.</summary>
internal sealed record RtdsLayerSpec(int Index, string ResourceName, Envoy.Config.Core.V3.ConfigSource? Source, string Path);

/// <summary>An immutable view of the runtime values (Envoy's <c>Runtime::Snapshot</c>).</summary>
internal sealed class RuntimeSnapshot
{
    private readonly Dictionary<string, string> _values;

    // Values written as a FractionalPercent (JSON/YAML such as "{numerator: 5, denominator:
    // TEN_THOUSAND}"), parsed once per snapshot so the request path only looks them up.
    private readonly Dictionary<string, (uint Numerator, uint Denominator)> _fractions;

    public RuntimeSnapshot(Dictionary<string, string> values)
    {
        _values = values;
        Keys = values.Keys.Order(StringComparer.Ordinal).ToArray();
        _fractions = new Dictionary<string, (uint, uint)>(StringComparer.Ordinal);
        foreach (var (key, text) in values)
        {
            if (text.Contains("numerator", StringComparison.Ordinal) || text.Contains("denominator", StringComparison.Ordinal))
            {
                if (ParseFractionalPercent(text) is { } fraction)
                {
                    _fractions[key] = fraction;
                }
            }
        }
    }

    public IReadOnlyList<string> Keys { get; }

    public string? Get(string key) => _values.GetValueOrDefault(key);

    /// <summary>The key as an integer, or <paramref name="defaultValue"/> when absent or not a number.</summary>
    public ulong GetInteger(string key, ulong defaultValue) =>
        key.Length > 0 && _values.TryGetValue(key, out var text) && ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : defaultValue;

    /// <summary>
    /// Envoy's <c>featureEnabled(key, FractionalPercent default, random)</c>: the key's value, when
    /// present, replaces the default — a FractionalPercent (JSON/YAML, or a struct in a static or
    /// RTDS layer) as written, or an integer taken as a percentage of 100 (above 100: always
    /// enabled); anything else leaves the default. The sample is <c>random % denominator &lt; numerator</c>.
    /// </summary>
    public bool FeatureEnabled(string key, uint numerator, uint denominator, ulong random)
    {
        if (key.Length > 0 && _values.TryGetValue(key, out var text))
        {
            if (ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var percent))
            {
                if (percent > 100)
                {
                    return true;
                }

                numerator = (uint)percent;
                denominator = 100;
            }
            else if (_fractions.TryGetValue(key, out var fraction))
            {
                (numerator, denominator) = fraction;
            }
        }

        return random % denominator < numerator;
    }

    /// <summary>A FractionalPercent written as JSON or YAML; null when the text is not one.</summary>
    internal static (uint Numerator, uint Denominator)? ParseFractionalPercent(string text)
    {
        try
        {
            var errors = new ConfigErrors();
            var node = ConfigDocument.Parse(text, ConfigFormat.Yaml);
            var value = new ProtoConverter(errors).Convert<FractionalPercent>(node);
            return errors.HasErrors ? null : (value.Numerator, DenominatorValue(value.Denominator));
        }
        catch (ConfigException)
        {
            return null;
        }
    }

    /// <summary>100, 10 000 or 1 000 000.</summary>
    public static uint DenominatorValue(FractionalPercent.Types.DenominatorType denominator) => denominator switch
    {
        FractionalPercent.Types.DenominatorType.TenThousand => 10_000,
        FractionalPercent.Types.DenominatorType.Million => 1_000_000,
        _ => 100,
    };
}
