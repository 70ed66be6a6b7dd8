namespace Legate.Network.FilterChainMatching;

/// <summary>
/// Step 7, source_type: a local connection goes to the SAME_IP_OR_LOOPBACK chains, any other to
/// the EXTERNAL chains; only when there are none for its kind do the ANY chains go on. Envoy's
/// test for "local" is narrow, and kept here: the source is exactly 127.0.0.1 or ::1 (not the rest
/// of 127.0.0.0/8), or the source IP equals the local IP (any port).
/// </summary>
internal sealed class SourceTypeLevel : IMatchLevel
{
    private readonly IpPrefixTable<SourcePortLevel>? _local;
    private readonly IpPrefixTable<SourcePortLevel>? _external;
    private readonly IpPrefixTable<SourcePortLevel>? _any;

    public SourceTypeLevel(IpPrefixTable<SourcePortLevel>? local, IpPrefixTable<SourcePortLevel>? external, IpPrefixTable<SourcePortLevel>? any)
    {
        _local = local;
        _external = external;
        _any = any;
    }

    public int Match(in ConnectionMatchInfo connection)
    {
        // Work out locality only when a chain asks, as Envoy does.
        if (_local is not null || _external is not null)
        {
            var typed = IsSameIpOrLoopback(in connection) ? _local : _external;
            if (typed is not null)
            {
                return typed.Match(in connection);
            }
        }

        return _any is null ? FilterChainMatcher.NoMatch : _any.Match(in connection);
    }

    /// <summary>Envoy's Network::Utility::isSameIpOrLoopback on the (post PROXY protocol) source.</summary>
    internal static bool IsSameIpOrLoopback(in ConnectionMatchInfo connection)
    {
        var remote = IpBits.OfConnection(connection.RemoteEndPoint.Address);
        if (remote.IsCanonicalLoopback)
        {
            return true;
        }

        var local = IpBits.OfConnection(connection.LocalEndPoint.Address);
        return local.IsV6 == remote.IsV6 && local.Value == remote.Value;
    }
}
