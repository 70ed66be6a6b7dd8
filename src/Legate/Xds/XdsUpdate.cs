namespace Legate.Xds;

/// <summary>
/// What one response (or file) changes for a type: resources added or updated, names removed.
/// In state of the world, <see cref="Resources"/> is every resource of the response (unchanged
/// ones included: handlers skip them by content), and <see cref="Removed"/> the wildcard
/// resources it no longer lists.
/// </summary>
internal sealed class XdsUpdate(IReadOnlyList<XdsResource> resources, IReadOnlyList<string> removed, string version, bool isStateOfWorld)
{
    public IReadOnlyList<XdsResource> Resources { get; } = resources;

    public IReadOnlyList<string> Removed { get; } = removed;

    /// <summary>version_info (SotW) or system_version_info (Delta).</summary>
    public string Version { get; } = version;

    /// <summary>True: all-or-nothing (one bad resource rejects the update). False (Delta): per resource.</summary>
    public bool IsStateOfWorld { get; } = isStateOfWorld;
}

/// <summary>Why one resource of an update was rejected.</summary>
internal sealed record XdsResourceError(string Resource, string Message)
{
    public override string ToString() => Resource.Length > 0 ? $"{Resource}: {Message}" : Message;
}

/// <summary>
/// Applies one type's updates (Envoy's SubscriptionCallbacks): CDS, LDS, and the named RDS/EDS
/// dispatchers. Returns the rejected resources; for a state-of-the-world update any error means
/// nothing was applied.
/// </summary>
internal interface IXdsUpdateHandler
{
    ValueTask<IReadOnlyList<XdsResourceError>> ApplyAsync(XdsUpdate update, CancellationToken cancellationToken);

    /// <summary>The first fetch did not arrive within initial_fetch_timeout: stop waiting for it (init goes on).</summary>
    void OnInitialFetchTimeout();
}
