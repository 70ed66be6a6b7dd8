using System.Collections.Frozen;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// Step 1, destination_port: chains naming the connection's local port are the most specific;
/// only when no chain names it do the chains without a port go on. As in Envoy, a connection whose
/// port has chains never falls back to the port-less ones, even if all of its chains fail later.
/// </summary>
internal sealed class DestinationPortLevel : IMatchLevel
{
    private readonly FrozenDictionary<int, IpPrefixTable<ServerNameLevel>> _byPort;
    private readonly IpPrefixTable<ServerNameLevel>? _any;

    public DestinationPortLevel(IReadOnlyCollection<KeyValuePair<int, IpPrefixTable<ServerNameLevel>>> byPort, IpPrefixTable<ServerNameLevel>? any)
    {
        _byPort = byPort.ToFrozenDictionary();
        _any = any;
    }

    public int Match(in ConnectionMatchInfo connection)
    {
        if (_byPort.TryGetValue(connection.LocalEndPoint.Port, out var exact))
        {
            return exact.Match(in connection);
        }

        return _any is null ? FilterChainMatcher.NoMatch : _any.Match(in connection);
    }
}
