using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Legate.Upstream;

/// <summary>
/// Envoy's ORIGINAL_DST load balancer (lb_policy CLUSTER_PROVIDED): the destination is the
/// dynamic metadata value at <c>metadata_key</c> when set (the request's, else the downstream
/// connection's; a string <c>IP:port</c>, or a list's first element), else the request's override
/// header when <c>use_http_header</c> is set and the header is present and valid, else the
/// downstream connection's original destination when a listener filter restored it;
/// <c>upstream_port_override</c> then replaces the port. No destination means no host (503 UH).
/// </summary>
internal sealed class OriginalDstLoadBalancer(OriginalDstCluster cluster) : ILoadBalancer
{
    public Host? ChooseHost(ILoadBalancerContext? context)
    {
        if (context is null)
        {
            return null;
        }

        var destination = OverrideFromMetadata(context) ?? OverrideFromHeader(context) ?? context.DownstreamOriginalDestination;
        if (destination is null)
        {
            return null;
        }

        if (cluster.Settings.PortOverride is { } port)
        {
            destination = new IPEndPoint(destination.Address, port);
        }

        return cluster.GetOrAddHost(destination);
    }

    private IPEndPoint? OverrideFromMetadata(ILoadBalancerContext context)
    {
        if (cluster.Settings.MetadataNamespace is not { } ns)
        {
            return null;
        }

        // Envoy's order: the request's dynamic metadata, then the connection's, the first string wins.
        var value = StringAt(context.DownstreamDynamicMetadata, ns) ?? StringAt(context.DownstreamConnectionDynamicMetadata, ns);
        if (value is null)
        {
            return null;
        }

        if (TryParseIpAndPort(value, out var endPoint))
        {
            return endPoint;
        }

        cluster.Info?.Stats.OriginalDstHostInvalid.Inc();
        return null;
    }

    /// <summary>The string at <c>metadata_key</c> in <paramref name="metadata"/> (a list's first element), or null.</summary>
    private string? StringAt(Envoy.Config.Core.V3.Metadata? metadata, string ns)
    {
        if (metadata is null || !metadata.FilterMetadata.TryGetValue(ns, out var fields))
        {
            return null;
        }

        Google.Protobuf.WellKnownTypes.Value? value = null;
        foreach (var key in cluster.Settings.MetadataPath)
        {
            if (fields is null || !fields.Fields.TryGetValue(key, out value))
            {
                return null;
            }

            fields = value.StructValue;
        }

        if (value?.ListValue is { Values.Count: > 0 } list)
        {
            value = list.Values[0];
        }

        return value?.KindCase == Google.Protobuf.WellKnownTypes.Value.KindOneofCase.StringValue ? value.StringValue : null;
    }

    private IPEndPoint? OverrideFromHeader(ILoadBalancerContext context)
    {
        if (cluster.Settings.HeaderName is not { } name || context.DownstreamHeaders?.GetValue(name) is not { } value)
        {
            return null;
        }

        // Untrusted input: only the first value, and only a literal IP:port (Envoy resolves nothing here).
        if (TryParseIpAndPort(value, out var endPoint))
        {
            return endPoint;
        }

        cluster.Info?.Stats.OriginalDstHostInvalid.Inc();
        return null;
    }

    /// <summary><c>a.b.c.d:port</c> or <c>[v6]:port</c>, as Envoy's parseInternetAddressAndPort.</summary>
    internal static bool TryParseIpAndPort(string value, out IPEndPoint endPoint)
    {
        endPoint = null!;
        var colon = value.LastIndexOf(':');
        if (colon <= 0 || colon == value.Length - 1
            || !ushort.TryParse(value.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port))
        {
            return false;
        }

        var host = value.AsSpan(0, colon);
        IPAddress? address;
        if (host[0] == '[')
        {
            if (host.Length < 3 || host[^1] != ']' || !IPAddress.TryParse(host[1..^1], out address) || address.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }
        }
        else if (!IsDottedQuad(host) || !IPAddress.TryParse(host, out address))
        {
            return false;
        }

        endPoint = new IPEndPoint(address, port);
        return true;
    }

    // IPAddress.TryParse also takes "1" or "1.2" (inet_aton forms); inet_pton, which Envoy uses, does not.
    private static bool IsDottedQuad(ReadOnlySpan<char> host)
    {
        var dots = 0;
        foreach (var c in host)
        {
            if (c == '.')
            {
                dots++;
            }
            else if (c is < '0' or > '9')
            {
                return false;
            }
        }

        return dots == 3;
    }
}
