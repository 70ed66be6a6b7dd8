using Legate.Runtime;
using RuntimeResource = Envoy.Service.Runtime.V3.Runtime;

namespace Legate.Xds;

/// <summary>
/// RTDS (Envoy's RtdsSubscription): the Runtime resources of one source, each the content of the
/// runtime layer(s) whose <c>rtds_layer.name</c> names it. An accepted resource replaces its
/// layer's values (and the runtime snapshot); a resource removed in Delta empties its layer; a
/// state-of-the-world response without a layer's resource is rejected, as Envoy does. A resource
/// of a layer nobody asked for is ignored.
/// </summary>
internal sealed class RtdsDispatcher(RuntimeLoader runtime) : IXdsUpdateHandler
{
    private readonly Dictionary<string, List<int>> _layers = new(StringComparer.Ordinal);

    /// <summary>The subscription this dispatcher serves.</summary>
    public XdsSubscription Subscription { get; set; } = null!;

    public void Add(RtdsLayerSpec layer)
    {
        lock (_layers)
        {
            if (!_layers.TryGetValue(layer.ResourceName, out var indexes))
            {
                indexes = [];
                _layers.Add(layer.ResourceName, indexes);
            }

            indexes.Add(layer.Index);
        }

        Subscription.AddName(layer.ResourceName);
    }

    public ValueTask<IReadOnlyList<XdsResourceError>> ApplyAsync(XdsUpdate update, CancellationToken cancellationToken)
    {
        if (update.IsStateOfWorld)
        {
            // Envoy's RTDS layer takes exactly one resource per state-of-the-world response: a
            // response without it is rejected (the layer keeps its values).
            var errors = new List<XdsResourceError>();
            foreach (var name in Names())
            {
                if (!update.Resources.Any(r => r.Name == name))
                {
                    errors.Add(new XdsResourceError(name, $"unexpected RTDS resource length: the response has no Runtime '{name}'"));
                }
            }

            if (errors.Count > 0)
            {
                return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>(errors);
            }
        }

        foreach (var resource in update.Resources)
        {
            if (!resource.IsUnchanged)
            {
                foreach (var index in LayersOf(resource.Name))
                {
                    runtime.SetLayer(index, ((RuntimeResource)resource.Message).Layer);
                }
            }
        }

        foreach (var name in update.Removed)
        {
            foreach (var index in LayersOf(name))
            {
                runtime.SetLayer(index, null);
            }
        }

        return ValueTask.FromResult<IReadOnlyList<XdsResourceError>>([]);
    }

    public void OnInitialFetchTimeout()
    {
        // The layers stay empty until their resources arrive; init goes on.
    }

    private string[] Names()
    {
        lock (_layers)
        {
            return _layers.Keys.ToArray();
        }
    }

    private int[] LayersOf(string name)
    {
        lock (_layers)
        {
            return _layers.TryGetValue(name, out var indexes) ? indexes.ToArray() : [];
        }
    }
}
