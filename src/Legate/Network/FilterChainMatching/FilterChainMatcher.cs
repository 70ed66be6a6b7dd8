using Legate.Config;
using EnvoyListener = Envoy.Config.Listener.V3.Listener;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// Picks a listener's filter chain for a new connection, as Envoy's filter_chain_match does.
/// Compiled once per listener config into an immutable tree; <see cref="Match"/> allocates nothing
/// and does hash lookups per step instead of scanning the chains, so it is safe to share between
/// threads and cheap with thousands of chains.
/// </summary>
/// <remarks>
/// The rules, from Envoy's FilterChainMatch reference (paraphrased). A chain is selected only if
/// ALL of its criteria hold for the connection. The criteria are applied in this order:
/// <list type="number">
/// <item>destination port (the local port);</item>
/// <item>destination IP address (prefix_ranges; the local address);</item>
/// <item>server name (server_names, e.g. SNI for TLS);</item>
/// <item>transport protocol (transport_protocol: "raw_buffer" by default, "tls" from tls_inspector);</item>
/// <item>application protocols (application_protocols, e.g. ALPN for TLS);</item>
/// <item>directly connected source IP address (direct_source_prefix_ranges; differs from the source
///   only when a listener filter such as proxy_protocol overrides the source address);</item>
/// <item>source type (source_type: any, local or external);</item>
/// <item>source IP address (source_prefix_ranges);</item>
/// <item>source port (source_ports).</item>
/// </list>
/// For criteria with ranges or wildcards, the most specific value among all chains that matches
/// the connection is used: for SNI www.example.com that is www.example.com, then *.example.com,
/// then *.com, then a chain without server_names; for IPs the longest prefix. Envoy's other way
/// to say it: start with all N chains and prune them with the steps above; at each step only the
/// chains that match most specifically go on to the next step. A chain that leaves a criterion
/// unset matches anything at that step, but loses to the chains that set it and match; a chain
/// that sets it and does not match is out. There is no backtracking: once a step has kept the most
/// specific chains, less specific ones never come back, even if all kept chains fail a later step
/// (e.g. a connection on a port some chain names is never served by port-less chains).
/// At most one chain is left after the last step (overlapping chains are rejected at compile
/// time). If none is left, the connection gets default_filter_chain if the listener has one;
/// otherwise the caller closes it (Envoy counts it in no_filter_chain_match).
/// </remarks>
internal sealed class FilterChainMatcher
{
    /// <summary><see cref="Match"/>: no chain matches and the listener has no default_filter_chain.</summary>
    public const int NoMatch = -1;

    /// <summary><see cref="Match"/>: no chain matches; use the listener's default_filter_chain.</summary>
    public const int DefaultFilterChain = -2;

    private readonly DestinationPortLevel? _root;
    private readonly FilterChainMatcherTree? _tree;

    private FilterChainMatcher(DestinationPortLevel? root, FilterChainMatcherTree? tree, int filterChainCount, bool hasDefaultFilterChain)
    {
        _root = root;
        _tree = tree;
        FilterChainCount = filterChainCount;
        HasDefaultFilterChain = hasDefaultFilterChain;
    }

    /// <summary>The number of filter_chains; <see cref="Match"/> returns indices below it.</summary>
    public int FilterChainCount { get; }

    public bool HasDefaultFilterChain { get; }

    /// <summary>
    /// Validates the filter_chain_match of every chain of <paramref name="listener"/> and compiles
    /// them. Errors and warnings go to <paramref name="errors"/> under <paramref name="path"/> (the
    /// listener's path); returns null if there was any error.
    /// </summary>
    public static FilterChainMatcher? Compile(EnvoyListener listener, string path, ConfigErrors errors)
    {
        var errorCount = errors.Errors.Count;
        if (listener.FilterChainMatcher is not null)
        {
            // The unified matcher replaces every chain's filter_chain_match.
            var tree = FilterChainMatcherTree.Compile(listener, path, errors);
            return tree is null || errors.Errors.Count > errorCount
                ? null
                : new FilterChainMatcher(null, tree, listener.FilterChains.Count, listener.DefaultFilterChain is not null);
        }

        var chainsPath = FieldPath.Field(path, "filter_chains");
        var chains = new ChainCriteria[listener.FilterChains.Count];
        for (var i = 0; i < chains.Length; i++)
        {
            var matchPath = FieldPath.Field(FieldPath.Index(chainsPath, i), "filter_chain_match");
            chains[i] = ChainCriteria.Parse(listener.FilterChains[i].FilterChainMatch, matchPath, errors);
        }

        if (listener.DefaultFilterChain?.FilterChainMatch is not null)
        {
            errors.Warn(FieldPath.Field(FieldPath.Field(path, "default_filter_chain"), "filter_chain_match"),
                "ignored: the default filter chain serves the connections no filter chain matches (as in Envoy)");
        }

        // Invalid values are dropped while reading, so overlaps among such chains would be false
        // alarms: they are checked once the values are valid.
        if (errors.Errors.Count > errorCount)
        {
            return null;
        }

        var root = new MatchTreeBuilder(chains, chainsPath, errors).Build();
        return errors.Errors.Count > errorCount
            ? null
            : new FilterChainMatcher(root, null, chains.Length, listener.DefaultFilterChain is not null);
    }

    /// <summary>
    /// The index in filter_chains of the chain for <paramref name="connection"/>, else
    /// <see cref="DefaultFilterChain"/> or <see cref="NoMatch"/>. Allocation-free.
    /// </summary>
    public int Match(in ConnectionMatchInfo connection)
    {
        var chain = _tree is not null ? _tree.Match(in connection) : _root!.Match(in connection);
        return chain >= 0 ? chain : HasDefaultFilterChain ? DefaultFilterChain : NoMatch;
    }
}
