using System.Collections.Frozen;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// Step 9, source_ports, the last one: a chain naming the connection's source port beats one that
/// names none. At most one chain is left here; overlapping rules are rejected when compiling.
/// </summary>
internal sealed class SourcePortLevel : IMatchLevel
{
    private readonly FrozenDictionary<int, int> _byPort;
    private readonly int _any;

    /// <param name="byPort">Source port to filter chain index.</param>
    /// <param name="any">The chain that names no source port, or <see cref="FilterChainMatcher.NoMatch"/>.</param>
    public SourcePortLevel(IReadOnlyCollection<KeyValuePair<int, int>> byPort, int any)
    {
        _byPort = byPort.ToFrozenDictionary();
        _any = any;
    }

    public int Match(in ConnectionMatchInfo connection) =>
        _byPort.TryGetValue(connection.RemoteEndPoint.Port, out var chain) ? chain : _any;
}
