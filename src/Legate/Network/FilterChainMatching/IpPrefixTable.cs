using System.Collections.Frozen;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// Longest-prefix match over the ranges of one step (destination, direct source or source IP):
/// one hash table keyed by masked prefix, probed once per distinct prefix length, longest first.
/// The cost is the number of distinct lengths configured (at most 33 or 129), not the number of
/// ranges or chains. Chains without ranges sit under 0.0.0.0/0 and ::/0, so they are the last
/// probe of their family, as in Envoy.
/// </summary>
internal sealed class IpPrefixTable<T> : IMatchLevel
    where T : class, IMatchLevel
{
    private readonly FrozenDictionary<IpPrefix, T> _entries;
    private readonly int[] _v4Lengths;
    private readonly int[] _v6Lengths;
    private readonly MatchedAddress _matched;

    /// <param name="entries">The ranges and their next step.</param>
    /// <param name="matched">Which address of the connection this step looks at.</param>
    public IpPrefixTable(IReadOnlyCollection<KeyValuePair<IpPrefix, T>> entries, MatchedAddress matched)
    {
        _entries = entries.ToFrozenDictionary();
        _v4Lengths = LengthsOf(entries, v6: false);
        _v6Lengths = LengthsOf(entries, v6: true);
        _matched = matched;
    }

    public int Count => _entries.Count;

    public int Match(in ConnectionMatchInfo connection)
    {
        var endPoint = _matched switch
        {
            MatchedAddress.Destination => connection.LocalEndPoint,
            MatchedAddress.DirectSource => connection.DirectRemoteEndPoint,
            _ => connection.RemoteEndPoint,
        };
        var address = IpBits.OfConnection(endPoint.Address);
        var lengths = address.IsV6 ? _v6Lengths : _v4Lengths;
        foreach (var length in lengths)
        {
            if (_entries.TryGetValue(IpPrefix.Of(address, length), out var next))
            {
                // Longest matching prefix wins; the chains under shorter ones are out even if this
                // branch fails later.
                return next.Match(in connection);
            }
        }

        return FilterChainMatcher.NoMatch;
    }

    private static int[] LengthsOf(IReadOnlyCollection<KeyValuePair<IpPrefix, T>> entries, bool v6)
    {
        var lengths = new SortedSet<int>(Comparer<int>.Create((a, b) => b.CompareTo(a)));
        foreach (var entry in entries)
        {
            if (entry.Key.IsV6 == v6)
            {
                lengths.Add(entry.Key.Length);
            }
        }

        return [.. lengths];
    }
}
