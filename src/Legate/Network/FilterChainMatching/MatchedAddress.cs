namespace Legate.Network.FilterChainMatching;

/// <summary>The address of a connection an <see cref="IpPrefixTable{T}"/> step matches.</summary>
internal enum MatchedAddress
{
    /// <summary>The local address (prefix_ranges).</summary>
    Destination,

    /// <summary>The directly connected peer (direct_source_prefix_ranges).</summary>
    DirectSource,

    /// <summary>The source, after PROXY protocol (source_prefix_ranges).</summary>
    Source,
}
