using System.Collections.Frozen;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// Step 3, server_names: for SNI www.example.com the most specific match is www.example.com, then
/// *.example.com, then *.com, then the chains without server_names (Envoy's wording). A wildcard
/// covers any number of labels (*.com matches a.b.com) but never the bare suffix (*.example.com
/// does not match example.com). Names compare case-insensitively: Envoy lowercases both the
/// configured names and the SNI, and DNS names are case-insensitive.
/// </summary>
internal sealed class ServerNameLevel : IMatchLevel
{
    private readonly FrozenDictionary<string, TransportProtocolLevel> _exact;

    // Keyed by the suffix after the '*', leading dot included: "*.example.com" is ".example.com".
    private readonly FrozenDictionary<string, TransportProtocolLevel>.AlternateLookup<ReadOnlySpan<char>> _wildcards;
    private readonly bool _hasWildcards;
    private readonly TransportProtocolLevel? _any;

    public ServerNameLevel(
        IReadOnlyCollection<KeyValuePair<string, TransportProtocolLevel>> exact,
        IReadOnlyCollection<KeyValuePair<string, TransportProtocolLevel>> wildcardSuffixes,
        TransportProtocolLevel? any)
    {
        _exact = exact.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
        _wildcards = wildcardSuffixes.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase).GetAlternateLookup<ReadOnlySpan<char>>();
        _hasWildcards = wildcardSuffixes.Count > 0;
        _any = any;
    }

    public int Match(in ConnectionMatchInfo connection)
    {
        var name = connection.RequestedServerName;
        if (name.Length > 0)
        {
            if (_exact.TryGetValue(name, out var exact))
            {
                return exact.Match(in connection);
            }

            if (_hasWildcards)
            {
                // Longest suffix first: from the first dot after the first character, as Envoy
                // walks them; a suffix that is only the trailing dot is not a domain.
                for (var dot = name.IndexOf('.', 1); dot >= 0 && dot < name.Length - 1; dot = name.IndexOf('.', dot + 1))
                {
                    if (_wildcards.TryGetValue(name.AsSpan(dot), out var wildcard))
                    {
                        return wildcard.Match(in connection);
                    }
                }
            }
        }

        return _any is null ? FilterChainMatcher.NoMatch : _any.Match(in connection);
    }
}
