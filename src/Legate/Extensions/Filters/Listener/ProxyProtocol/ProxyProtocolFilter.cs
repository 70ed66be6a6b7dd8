using System.Net.Sockets;
using Legate.Network;
using Legate.Stats;
using Proto = Envoy.Extensions.Filters.Listener.ProxyProtocol.V3.ProxyProtocol;
using ProxyVersion = Envoy.Config.Core.V3.ProxyProtocolConfig.Types.Version;

namespace Legate.Extensions.Filters.Listener.ProxyProtocol;

/// <summary>
/// <c>envoy.filters.listener.proxy_protocol</c>: reads a PROXY v1 or v2 header, consumes it, and
/// makes the addresses it announces the connection's remote (and local) addresses, so filter chain
/// matching, x-forwarded-for and access logs see the client. Without a header the connection is
/// closed unless <c>allow_requests_without_proxy_protocol</c>; <c>disallowed_versions</c> close too.
/// <c>rules</c> copy TLV values into the connection's dynamic metadata (namespace
/// <c>envoy.filters.listener.proxy_protocol</c> unless the rule names one); <c>pass_through_tlvs</c>
/// selects the TLVs kept for an upstream PROXY protocol header (none unless set, as Envoy).
/// Stats: <c>proxy_proto.[&lt;stat_prefix&gt;.]{not_found_allowed,not_found_disallowed,versions.v1|v2.{found,disallowed,error}}</c>.
/// </summary>
internal sealed class ProxyProtocolFilter : IListenerFilter
{
    private const int MaxHeader = 16 + 65535;

    private readonly bool _allowWithout;
    private readonly bool[] _disallowed = new bool[3];
    private readonly Counter _notFoundAllowed;
    private readonly Counter _notFoundDisallowed;
    private readonly Counter[] _found = new Counter[3];
    private readonly Counter[] _versionDisallowed = new Counter[3];
    private readonly Counter[] _error = new Counter[3];

    /// <summary>Envoy's default metadata namespace for <c>rules</c>.</summary>
    public const string MetadataNamespace = "envoy.filters.listener.proxy_protocol";

    // rules by TLV type: (namespace, key), or null.
    private readonly (string Namespace, string Key)?[] _rules = new (string, string)?[256];
    private readonly bool _hasRules;
    private readonly TlvSelection _passThrough;

    public ProxyProtocolFilter(Proto config, StatsStore stats)
    {
        _allowWithout = config.AllowRequestsWithoutProxyProtocol;
        foreach (var version in config.DisallowedVersions)
        {
            _disallowed[version == ProxyVersion.V1 ? 1 : 2] = true;
        }

        foreach (var rule in config.Rules)
        {
            if (rule.TlvType < 256 && rule.OnTlvPresent is { } target)
            {
                _rules[rule.TlvType] = (target.MetadataNamespace.Length > 0 ? target.MetadataNamespace : MetadataNamespace, target.Key);
                _hasRules = true;
            }
        }

        _passThrough = TlvSelection.From(config.PassThroughTlvs);
        var prefix = "proxy_proto." + (config.StatPrefix.Length > 0 ? config.StatPrefix + "." : string.Empty);
        _notFoundAllowed = stats.Counter(prefix + "not_found_allowed");
        _notFoundDisallowed = stats.Counter(prefix + "not_found_disallowed");
        for (var v = 1; v <= 2; v++)
        {
            var vp = prefix + "versions.v" + v + ".";
            _found[v] = stats.Counter(vp + "found");
            _versionDisallowed[v] = stats.Counter(vp + "disallowed");
            _error[v] = stats.Counter(vp + "error");
        }
    }

    public async ValueTask<bool> OnAcceptAsync(ListenerFilterContext context, CancellationToken cancellationToken)
    {
        (ProxyProtocolHeader.ParseStatus Status, ProxyProtocolHeader? Header, int Version) outcome;
        try
        {
            outcome = await SocketPeek.PeekUntilAsync(context.Socket, MaxHeader, static (ReadOnlySpan<byte> data, bool closed, out (ProxyProtocolHeader.ParseStatus, ProxyProtocolHeader?, int) result) =>
            {
                var status = ProxyProtocolHeader.TryParse(data, out var header);
                var version = data.Length > 0 && data[0] == 0x0D ? 2 : 1;
                result = (status, header, version);
                return status != ProxyProtocolHeader.ParseStatus.NeedMoreData || closed;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException)
        {
            return false;
        }

        switch (outcome.Status)
        {
            case ProxyProtocolHeader.ParseStatus.NotProxyProtocol:
                (_allowWithout ? _notFoundAllowed : _notFoundDisallowed).Inc();
                return _allowWithout;
            case ProxyProtocolHeader.ParseStatus.Done:
                break;
            default:
                _error[outcome.Version].Inc();
                return false;
        }

        var header = outcome.Header!;
        if (_disallowed[header.Version])
        {
            _versionDisallowed[header.Version].Inc();
            return false;
        }

        // The header was only peeked: take exactly its bytes off the socket, nothing more.
        var buffer = new byte[header.Length];
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await context.Socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                _error[header.Version].Inc();
                return false;
            }

            read += n;
        }

        _found[header.Version].Inc();
        if (header.Source is { } source)
        {
            context.RemoteEndPoint = source;
        }

        if (header.Destination is { } destination)
        {
            context.LocalEndPoint = destination;
            context.LocalAddressRestored = true;
        }

        if (header.Tlvs.Count > 0)
        {
            ApplyTlvs(context, header.Tlvs);
        }

        return true;
    }

    private void ApplyTlvs(ListenerFilterContext context, IReadOnlyList<(byte Type, byte[] Value)> tlvs)
    {
        List<(byte, byte[])>? kept = null;
        foreach (var (type, value) in tlvs)
        {
            if (_hasRules && _rules[type] is var (ns, key))
            {
                var metadata = context.DynamicMetadata ??= new Envoy.Config.Core.V3.Metadata();
                if (!metadata.FilterMetadata.TryGetValue(ns, out var fields))
                {
                    fields = new Google.Protobuf.WellKnownTypes.Struct();
                    metadata.FilterMetadata[ns] = fields;
                }

                // The value as a string, invalid UTF-8 replaced (Envoy keeps the bytes in a string too).
                fields.Fields[key] = Google.Protobuf.WellKnownTypes.Value.ForString(System.Text.Encoding.UTF8.GetString(value));
            }

            if (_passThrough.Includes(type))
            {
                (kept ??= []).Add((type, value));
            }
        }

        if (kept is not null)
        {
            context.ProxyProtocolTlvs = kept;
        }
    }
}
