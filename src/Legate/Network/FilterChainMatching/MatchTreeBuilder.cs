using System.Globalization;
using Legate.Config;
using SourceType = Envoy.Config.Listener.V3.FilterChainMatch.Types.ConnectionSourceType;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// Builds the match tree by partitioning the chains step by step, in Envoy's order. At each step a
/// chain goes under every value it lists (a chain with server_names [a, b] sits under both), or
/// under the step's "any" branch when it sets none; IP steps file "any" under 0.0.0.0/0 and ::/0.
/// Two chains still together after the last step match the same connections: Envoy rejects that,
/// and so does this (one error per pair of chains).
/// </summary>
internal sealed class MatchTreeBuilder
{
    private readonly ChainCriteria[] _chains;
    private readonly string _chainsPath;
    private readonly ConfigErrors _errors;
    private readonly HashSet<(int First, int Second)> _reported = new();

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
            exact.Add(KeyValuePair.Create(port, DestinationIps(group, MatchTrail.Step(null, "destination_port", port.ToString(CultureInfo.InvariantCulture)))));
        }

        return new DestinationPortLevel(exact, any.Count > 0 ? DestinationIps(any, null) : null);
    }

    private IpPrefixTable<ServerNameLevel> DestinationIps(List<int> members, MatchTrail? trail) =>
        Prefixes(members, c => c.DestinationPrefixes, "prefix_ranges", MatchedAddress.Destination, trail, ServerNames);

    private ServerNameLevel ServerNames(List<int> members, MatchTrail? trail)
    {
        var (byName, any) = Partition(members, c => c.ServerNames);
        var exact = new List<KeyValuePair<string, TransportProtocolLevel>>();
        var wildcards = new List<KeyValuePair<string, TransportProtocolLevel>>();
        foreach (var (name, group) in byName)
        {
            var next = TransportProtocols(group, MatchTrail.Step(trail, "server_names", Quote(name)));
            if (name.StartsWith("*.", StringComparison.Ordinal))
            {
                wildcards.Add(KeyValuePair.Create(name[1..], next));
            }
            else
            {
                exact.Add(KeyValuePair.Create(name, next));
            }
        }

        return new ServerNameLevel(exact, wildcards, any.Count > 0 ? TransportProtocols(any, trail) : null);
    }

    private TransportProtocolLevel TransportProtocols(List<int> members, MatchTrail? trail)
    {
        var (byProtocol, any) = Partition<string>(members, c => c.TransportProtocol.Length == 0 ? [] : [c.TransportProtocol]);
        var exact = new List<KeyValuePair<string, ApplicationProtocolLevel>>(byProtocol.Count);
        foreach (var (protocol, group) in byProtocol)
        {
            exact.Add(KeyValuePair.Create(protocol, ApplicationProtocols(group, MatchTrail.Step(trail, "transport_protocol", Quote(protocol)))));
        }

        return new TransportProtocolLevel(exact, any.Count > 0 ? ApplicationProtocols(any, trail) : null);
    }

    private ApplicationProtocolLevel ApplicationProtocols(List<int> members, MatchTrail? trail)
    {
        var (byProtocol, any) = Partition(members, c => c.ApplicationProtocols);
        var exact = new List<KeyValuePair<string, IpPrefixTable<SourceTypeLevel>>>(byProtocol.Count);
        foreach (var (protocol, group) in byProtocol)
        {
            exact.Add(KeyValuePair.Create(protocol, DirectSourceIps(group, MatchTrail.Step(trail, "application_protocols", Quote(protocol)))));
        }

        return new ApplicationProtocolLevel(exact, any.Count > 0 ? DirectSourceIps(any, trail) : null);
    }

    private IpPrefixTable<SourceTypeLevel> DirectSourceIps(List<int> members, MatchTrail? trail) =>
        Prefixes(members, c => c.DirectSourcePrefixes, "direct_source_prefix_ranges", MatchedAddress.DirectSource, trail, SourceTypes);

    private SourceTypeLevel SourceTypes(List<int> members, MatchTrail? trail)
    {
        var (byType, any) = Partition<SourceType>(members, c => c.SourceType == SourceType.Any ? [] : [c.SourceType]);
        var local = byType.TryGetValue(SourceType.SameIpOrLoopback, out var l) ? SourceIps(l, MatchTrail.Step(trail, "source_type", "SAME_IP_OR_LOOPBACK")) : null;
        var external = byType.TryGetValue(SourceType.External, out var e) ? SourceIps(e, MatchTrail.Step(trail, "source_type", "EXTERNAL")) : null;
        return new SourceTypeLevel(local, external, any.Count > 0 ? SourceIps(any, trail) : null);
    }

    private IpPrefixTable<SourcePortLevel> SourceIps(List<int> members, MatchTrail? trail) =>
        Prefixes(members, c => c.SourcePrefixes, "source_prefix_ranges", MatchedAddress.Source, trail, SourcePorts);

    private SourcePortLevel SourcePorts(List<int> members, MatchTrail? trail)
    {
        var (byPort, any) = Partition(members, c => c.SourcePorts);
        var exact = new List<KeyValuePair<int, int>>(byPort.Count);
        foreach (var (port, group) in byPort)
        {
            exact.Add(KeyValuePair.Create(port, Winner(group, MatchTrail.Step(trail, "source_ports", port.ToString(CultureInfo.InvariantCulture)))));
        }

        return new SourcePortLevel(exact, any.Count > 0 ? Winner(any, trail) : FilterChainMatcher.NoMatch);
    }

    private IpPrefixTable<T> Prefixes<T>(
        List<int> members,
        Func<ChainCriteria, IpPrefix[]> prefixesOf,
        string field,
        MatchedAddress matched,
        MatchTrail? trail,
        Func<List<int>, MatchTrail?, T> next)
        where T : class, IMatchLevel
    {
        var (groups, any) = Partition(members, prefixesOf);
        var written = new HashSet<IpPrefix>(groups.Keys);
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
                child = next(group, written.Contains(prefix) ? MatchTrail.Step(trail, field, prefix.ToString()) : trail);
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
    private int Winner(List<int> group, MatchTrail? trail)
    {
        for (var i = 1; i < group.Count; i++)
        {
            ReportOverlap(group[0], group[i], trail);
        }

        return group[0];
    }

    private void ReportOverlap(int first, int second, MatchTrail? trail)
    {
        if (!_reported.Add((first, second)))
        {
            return;
        }

        var path = FieldPath.Field(FieldPath.Index(_chainsPath, second), "filter_chain_match");
        var other = FieldPath.Index(_chainsPath, first);
        if (_chains[first].HasSameRulesAs(_chains[second]))
        {
            _errors.Add(path, $"multiple filter chains with the same matching rules are defined (same as {other})");
        }
        else
        {
            var connections = trail is null ? "every connection" : "a connection with " + trail;
            _errors.Add(path, $"multiple filter chains with overlapping matching rules are defined ({connections} matches both this chain and {other})");
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

    private static string Quote(string value) => "\"" + value + "\"";
}
