using Legate.Config;
using SourceType = Envoy.Config.Listener.V3.FilterChainMatch.Types.ConnectionSourceType;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// Builds the match tree by partitioning the chains step by step, in Envoy's order. At each step a
/// chain goes under every value it lists (a chain with server_names [a, b] sits under both), or
/// under the step's "any" branch when it sets none; IP steps file "any" under 0.0.0.0/0 and ::/0.
/// Two chains still together after the last step match the same connections: Envoy rejects that,
/// and so does this (one error per pair of chains, in config order).
/// </summary>
internal sealed class MatchTreeBuilder
{
    private readonly ChainCriteria[] _chains;
    private readonly string _chainsPath;
    private readonly ConfigErrors _errors;
    private readonly SortedSet<(int Second, int First)> _overlaps = new();

    /// <param name="chains">The criteria of filter_chains[i] at index i.</param>
    /// <param name="chainsPath">The path of the listener's filter_chains, for errors.</param>
    /// <param name="errors">Where overlapping chains are reported.</param>
    public MatchTreeBuilder(ChainCriteria[] chains, string chainsPath, ConfigErrors errors)
    {
        _chains = chains;
        _chainsPath = chainsPath;
        _errors = errors;
    }

    public DestinationPortLevel Build()
    {
        var all = new List<int>(_chains.Length);
        for (var i = 0; i < _chains.Length; i++)
        {
            all.Add(i);
        }

        var (byPort, any) = Partition<int>(all, c => c.DestinationPort == 0 ? [] : [c.DestinationPort]);
        var exact = new List<KeyValuePair<int, IpPrefixTable<ServerNameLevel>>>(byPort.Count);
        foreach (var (port, group) in byPort)
        {
            exact.Add(KeyValuePair.Create(port, DestinationIps(group)));
        }

        var root = new DestinationPortLevel(exact, any.Count > 0 ? DestinationIps(any) : null);
        ReportOverlaps();
        return root;
    }

    private IpPrefixTable<ServerNameLevel> DestinationIps(List<int> members) =>
        Prefixes(members, c => c.DestinationPrefixes, MatchedAddress.Destination, ServerNames);

    private ServerNameLevel ServerNames(List<int> members)
    {
        var (byName, any) = Partition(members, c => c.ServerNames);
        var exact = new List<KeyValuePair<string, TransportProtocolLevel>>();
        var wildcards = new List<KeyValuePair<string, TransportProtocolLevel>>();
        foreach (var (name, group) in byName)
        {
            var next = TransportProtocols(group);
            if (name.StartsWith("*.", StringComparison.Ordinal))
            {
                wildcards.Add(KeyValuePair.Create(name[1..], next));
            }
            else
            {
                exact.Add(KeyValuePair.Create(name, next));
            }
        }

        return new ServerNameLevel(exact, wildcards, any.Count > 0 ? TransportProtocols(any) : null);
    }

    private TransportProtocolLevel TransportProtocols(List<int> members)
    {
        var (byProtocol, any) = Partition<string>(members, c => c.TransportProtocol.Length == 0 ? [] : [c.TransportProtocol]);
        var exact = new List<KeyValuePair<string, ApplicationProtocolLevel>>(byProtocol.Count);
        foreach (var (protocol, group) in byProtocol)
        {
            exact.Add(KeyValuePair.Create(protocol, ApplicationProtocols(group)));
        }

        return new TransportProtocolLevel(exact, any.Count > 0 ? ApplicationProtocols(any) : null);
    }

    private ApplicationProtocolLevel ApplicationProtocols(List<int> members)
    {
        var (byProtocol, any) = Partition(members, c => c.ApplicationProtocols);
        var exact = new List<KeyValuePair<string, IpPrefixTable<SourceTypeLevel>>>(byProtocol.Count);
        foreach (var (protocol, group) in byProtocol)
        {
            exact.Add(KeyValuePair.Create(protocol, DirectSourceIps(group)));
        }

        return new ApplicationProtocolLevel(exact, any.Count > 0 ? DirectSourceIps(any) : null);
    }

    private IpPrefixTable<SourceTypeLevel> DirectSourceIps(List<int> members) =>
        Prefixes(members, c => c.DirectSourcePrefixes, MatchedAddress.DirectSource, SourceTypes);

    private SourceTypeLevel SourceTypes(List<int> members)
    {
        var (byType, any) = Partition<SourceType>(members, c => c.SourceType == SourceType.Any ? [] : [c.SourceType]);
        var local = byType.TryGetValue(SourceType.SameIpOrLoopback, out var l) ? SourceIps(l) : null;
        var external = byType.TryGetValue(SourceType.External, out var e) ? SourceIps(e) : null;
        return new SourceTypeLevel(local, external, any.Count > 0 ? SourceIps(any) : null);
    }

    private IpPrefixTable<SourcePortLevel> SourceIps(List<int> members) =>
        Prefixes(members, c => c.SourcePrefixes, MatchedAddress.Source, SourcePorts);

    private SourcePortLevel SourcePorts(List<int> members)
    {
        var (byPort, any) = Partition(members, c => c.SourcePorts);
        var exact = new List<KeyValuePair<int, int>>(byPort.Count);
        foreach (var (port, group) in byPort)
        {
            exact.Add(KeyValuePair.Create(port, Winner(group)));
        }

        return new SourcePortLevel(exact, any.Count > 0 ? Winner(any) : FilterChainMatcher.NoMatch);
    }

    private IpPrefixTable<T> Prefixes<T>(List<int> members, Func<ChainCriteria, IpPrefix[]> prefixesOf, MatchedAddress matched, Func<List<int>, T> next)
        where T : class, IMatchLevel
    {
        var (groups, any) = Partition(members, prefixesOf);
        if (any.Count > 0)
        {
            // Envoy's "no ranges" is the catch-all of each family, so a chain listing 0.0.0.0/0
            // and one listing nothing share a branch.
            foreach (var catchAll in (IpPrefix[])[IpPrefix.AnyV4, IpPrefix.AnyV6])
            {
                if (groups.TryGetValue(catchAll, out var group))
                {
                    group.AddRange(any);
                    group.Sort();
                }
                else
                {
                    groups[catchAll] = [.. any];
                }
            }
        }

        var entries = new List<KeyValuePair<IpPrefix, T>>(groups.Count);
        List<int>? sharedMembers = null;
        T? shared = null;
        foreach (var (prefix, group) in groups)
        {
            // 0.0.0.0/0 and ::/0 usually hold the same chains: build their subtree once.
            T child;
            if (prefix.Length == 0 && shared is not null && sharedMembers!.SequenceEqual(group))
            {
                child = shared;
            }
            else
            {
                child = next(group);
                if (prefix.Length == 0)
                {
                    (sharedMembers, shared) = (group, child);
                }
            }

            entries.Add(KeyValuePair.Create(prefix, child));
        }

        return new IpPrefixTable<T>(entries, matched);
    }

    /// <summary>The chain left at a leaf; any other chain there overlaps it.</summary>
    private int Winner(List<int> group)
    {
        for (var i = 1; i < group.Count; i++)
        {
            _overlaps.Add((group[i], group[0]));
        }

        return group[0];
    }

    private void ReportOverlaps()
    {
        foreach (var (second, first) in _overlaps)
        {
            var path = FieldPath.Field(FieldPath.Index(_chainsPath, second), "filter_chain_match");
            var other = FieldPath.Index(_chainsPath, first);
            var message = _chains[first].HasSameRulesAs(_chains[second])
                ? $"multiple filter chains with the same matching rules are defined (same as {other})"
                : $"multiple filter chains with overlapping matching rules are defined (a connection with {_chains[second].DescribeOverlap(_chains[first])} matches both this chain and {other})";
            _errors.Add(path, message);
        }
    }

    /// <summary>
    /// Groups <paramref name="members"/> (ascending chain indices) by each value a chain lists;
    /// chains listing none go to <c>Any</c>. Groups stay in ascending order.
    /// </summary>
    private (Dictionary<TKey, List<int>> Groups, List<int> Any) Partition<TKey>(List<int> members, Func<ChainCriteria, IReadOnlyList<TKey>> keysOf)
        where TKey : notnull
    {
        var groups = new Dictionary<TKey, List<int>>();
        var any = new List<int>();
        foreach (var member in members)
        {
            var keys = keysOf(_chains[member]);
            if (keys.Count == 0)
            {
                any.Add(member);
                continue;
            }

            foreach (var key in keys)
            {
                if (!groups.TryGetValue(key, out var group))
                {
                    groups[key] = group = [];
                }

                group.Add(member);
            }
        }

        return (groups, any);
    }
}
