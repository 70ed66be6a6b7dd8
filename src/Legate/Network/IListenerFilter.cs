namespace Legate.Network;

/// <summary>
/// A listener filter (Envoy's Network::ListenerFilter): runs on an accepted socket before the
/// filter chain is chosen, may peek at (or, like proxy_protocol, consume) the first bytes, and
/// fills in what filter chain matching looks at. Filters run in config order; all of them together
/// are bounded by <c>listener_filters_timeout</c>.
/// </summary>
internal interface IListenerFilter
{
    /// <summary>True to keep going, false to close the connection.</summary>
    ValueTask<bool> OnAcceptAsync(ListenerFilterContext context, CancellationToken cancellationToken);
}
