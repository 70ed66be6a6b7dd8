using System.Collections.Immutable;

namespace Legate.Upstream;

/// <summary>
/// What one update of a <see cref="PrioritySet"/> did: Envoy's "member update" (hosts added and
/// removed). Kept hosts are in neither list; their pools and counters carry on.
/// </summary>
internal sealed class HostUpdate
{
    public static readonly HostUpdate None = new([], [], changed: false);

    public HostUpdate(ImmutableArray<Host> added, ImmutableArray<Host> removed, bool changed)
    {
        Added = added;
        Removed = removed;
        Changed = changed;
    }

    public ImmutableArray<Host> Added { get; }

    public ImmutableArray<Host> Removed { get; }

    /// <summary>False when the update matched what was there: no new snapshot was published.</summary>
    public bool Changed { get; }
}
