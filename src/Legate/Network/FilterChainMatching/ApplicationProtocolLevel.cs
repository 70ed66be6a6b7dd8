using System.Collections.Frozen;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// Step 5, application_protocols: the client's ALPN list is walked in the client's order and the
/// first protocol some chain names decides (so for ["h2", "http/1.1"] the chains naming h2 win
/// over those naming http/1.1); failing that, the chains without application_protocols go on.
/// Protocols compare exactly: ALPN identifiers are byte strings.
/// </summary>
internal sealed class ApplicationProtocolLevel : IMatchLevel
{
    private readonly FrozenDictionary<string, IpPrefixTable<SourceTypeLevel>> _byProtocol;
    private readonly IpPrefixTable<SourceTypeLevel>? _any;

    public ApplicationProtocolLevel(IReadOnlyCollection<KeyValuePair<string, IpPrefixTable<SourceTypeLevel>>> byProtocol, IpPrefixTable<SourceTypeLevel>? any)
    {
        _byProtocol = byProtocol.ToFrozenDictionary(StringComparer.Ordinal);
        _any = any;
    }

    public int Match(in ConnectionMatchInfo connection)
    {
        var requested = connection.ApplicationProtocols;
        if (_byProtocol.Count > 0 && !requested.IsDefaultOrEmpty)
        {
            for (var i = 0; i < requested.Length; i++)
            {
                if (requested[i] is { } protocol && _byProtocol.TryGetValue(protocol, out var exact))
                {
                    return exact.Match(in connection);
                }
            }
        }

        return _any is null ? FilterChainMatcher.NoMatch : _any.Match(in connection);
    }
}
