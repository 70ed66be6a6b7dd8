using Envoy.Config.Core.V3;

namespace Legate.Extensions.Filters.Listener.ProxyProtocol;

/// <summary>
/// A <c>ProxyProtocolPassThroughTLVs</c>: which PROXY v2 TLV types pass (INCLUDE_ALL, or INCLUDE
/// the listed types). Unset = none, as Envoy (for the listener filter and the upstream transport socket alike).
/// </summary>
internal sealed class TlvSelection
{
    public static readonly TlvSelection None = new(false, []);

    private readonly bool _all;
    private readonly bool[] _types;

    private TlvSelection(bool all, bool[] types)
    {
        _all = all;
        _types = types;
    }

    public bool IsNone => !_all && _types.Length == 0;

    public static TlvSelection From(ProxyProtocolPassThroughTLVs? config)
    {
        if (config is null)
        {
            return None;
        }

        if (config.MatchType == ProxyProtocolPassThroughTLVs.Types.PassTLVsMatchType.IncludeAll)
        {
            return new TlvSelection(true, []);
        }

        var types = new bool[256];
        foreach (var type in config.TlvType)
        {
            if (type < 256)
            {
                types[type] = true;
            }
        }

        return new TlvSelection(false, types);
    }

    public bool Includes(byte type) => _all || (_types.Length > 0 && _types[type]);
}
