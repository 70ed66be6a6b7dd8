namespace Legate.Network.FilterChainMatching;

/// <summary>
/// One step of the compiled match tree: keeps the most specific branch for the connection and
/// hands it the rest, returning a filter chain index or <see cref="FilterChainMatcher.NoMatch"/>.
/// </summary>
internal interface IMatchLevel
{
    int Match(in ConnectionMatchInfo connection);
}
