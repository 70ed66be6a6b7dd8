using System.Collections.Frozen;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// Step 4, transport_protocol: an exact, case-sensitive match of the detected protocol ("tls" from
/// tls_inspector, "raw_buffer" when nothing was detected) beats the chains that do not set one.
/// </summary>
internal sealed class TransportProtocolLevel : IMatchLevel
{
    private readonly FrozenDictionary<string, ApplicationProtocolLevel> _byProtocol;
    private readonly ApplicationProtocolLevel? _any;

    public TransportProtocolLevel(IReadOnlyCollection<KeyValuePair<string, ApplicationProtocolLevel>> byProtocol, ApplicationProtocolLevel? any)
    {
        _byProtocol = byProtocol.ToFrozenDictionary(StringComparer.Ordinal);
        _any = any;
    }

    public int Match(in ConnectionMatchInfo connection)
    {
        if (_byProtocol.TryGetValue(connection.TransportProtocol, out var exact))
        {
            return exact.Match(in connection);
        }

        return _any is null ? FilterChainMatcher.NoMatch : _any.Match(in connection);
    }
}
