using System.Net;
using System.Net.Sockets;
using System.Text;
using Legate.Http.Http1;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Legate.Http;

/// <summary>
/// The header changes the connection manager makes on every request and response (Envoy's
/// ConnectionManagerUtility): hop-by-hop removal, x-forwarded-for / -proto, internal-request
/// detection, x-request-id, via, server and date.
/// </summary>
internal static class ConnectionManagerUtility
{
    private static readonly byte[] s_http = "http"u8.ToArray();
    private static readonly byte[] s_https = "https"u8.ToArray();
    private static readonly byte[] s_true = "true"u8.ToArray();

    /// <summary>
    /// Removes the connection-specific fields of RFC 9110 §7.6.1 that never cross a proxy.
    /// <c>te: trailers</c> survives (gRPC needs it); <c>upgrade</c> survives on an upgrade.
    /// </summary>
    public static void StripHopByHop(HttpHeaderMap headers, bool keepUpgrade)
    {
        headers.Remove(KnownHeader.Connection);
        headers.Remove(KnownHeader.KeepAlive);
        headers.Remove(KnownHeader.ProxyConnection);
        headers.Remove(KnownHeader.TransferEncoding);
        if (!keepUpgrade)
        {
            headers.Remove(KnownHeader.Upgrade);
        }

        if (headers.Contains(KnownHeader.Te))
        {
            var i = headers.IndexOf(KnownHeader.Te);
            var keepTrailers = headers.CountOf(KnownHeader.Te) == 1 && Ascii.EqualsIgnoreCase(headers.GetValueBytes(i), "trailers"u8);
            if (!keepTrailers)
            {
                headers.Remove(KnownHeader.Te);
            }
        }
    }

    /// <summary>
    /// The request-side mutations, run before the HTTP filters see the request, in Envoy's order
    /// (ConnectionManagerUtility::mutateRequestHeaders, then maybeNormalizeHost): the trusted client
    /// address from the peer or x-forwarded-for, internal/edge status, the x-envoy-* control headers
    /// an untrusted client may not set, x-request-id, via, and the Host port.
    /// </summary>
    public static void MutateRequestHeaders(HttpStream stream, bool isTls)
    {
        var config = stream.Config;
        config.EarlyHeaderMutation?.Apply(stream);
        var headers = stream.RequestHeaders.Headers;
        var remote = stream.Info.DownstreamRemoteAddress;
        var hasEnvoyHeaders = RemoveInternalFlag(headers);
        IPAddress? finalRemote = null;
        IPAddress? fromHeaders = null;
        bool singleXffAddress;
        if (config.UseRemoteAddress)
        {
            singleXffAddress = !headers.Contains(KnownHeader.XForwardedFor);

            // Trusted proxies in front of us: the client is that many hops back in XFF (read before appending).
            if (config.XffNumTrustedHops > 0)
            {
                finalRemote = fromHeaders = LastXffAddress(headers, config.XffNumTrustedHops - 1, out _);
            }

            finalRemote ??= remote?.Address;
            if (!config.SkipXffAppend && remote is not null)
            {
                // Envoy appends its own address for a loopback peer (the peer is then a local sidecar).
                var appended = IPAddress.IsLoopback(Unmap(remote.Address)) && stream.Info.DownstreamLocalAddress is { } local ? local.Address : remote.Address;
                AppendXff(headers, config.KeepIpv4MappedRemoteAddress ? appended : Unmap(appended));
            }

            // An untrusted previous hop may not claim https.
            if (config.XffNumTrustedHops == 0 || !headers.Contains(KnownHeader.XForwardedProto))
            {
                headers.Set(KnownHeader.XForwardedProto, isTls ? s_https : s_http);
            }
        }
        else if (config.OriginalIpDetections is { } detections)
        {
            // The configured extensions in order, until one finds the client or rejects the request.
            singleXffAddress = false;
            foreach (var detection in detections)
            {
                var result = detection.Detect(headers, remote);
                if (result.RejectStatus is { } status)
                {
                    stream.RejectOnOriginalIpDetection(status);
                    return;
                }

                if (result.Address is { } detected)
                {
                    finalRemote = fromHeaders = detected;
                    singleXffAddress = result.AllowTrustedAddressChecks;
                    break;
                }
            }
        }
        else
        {
            finalRemote = fromHeaders = LastXffAddress(headers, config.XffNumTrustedHops, out singleXffAddress);
        }

        if (fromHeaders is not null)
        {
            // The client's address as found in the headers (Envoy's setDownstreamRemoteAddress): what
            // %DOWNSTREAM_REMOTE_ADDRESS%, hashing on the source IP and the PROXY protocol header
            // upstream see; the peer stays %DOWNSTREAM_DIRECT_REMOTE_ADDRESS%. No port is known.
            stream.Info.DownstreamRemoteAddress = new IPEndPoint(fromHeaders, 0);
        }

        if (!headers.Contains(KnownHeader.XForwardedProto))
        {
            headers.Set(KnownHeader.XForwardedProto, isTls ? s_https : s_http);
        }

        if (config.SchemeToOverwrite is { } scheme)
        {
            // scheme_header_transformation.scheme_to_overwrite: :scheme and x-forwarded-proto, as Envoy.
            stream.RequestHeaders.Scheme = scheme;
            headers.Set(KnownHeader.XForwardedProto, scheme);
        }

        // Internal: exactly one address in XFF (after appending) and it is internal; no XFF without
        // use_remote_address means external.
        var internalRequest = singleXffAddress && finalRemote is not null && config.InternalAddresses.Contains(finalRemote);
        finalRemote ??= remote?.Address;
        var edgeRequest = !internalRequest && config.UseRemoteAddress;
        if (internalRequest)
        {
            headers.Set("x-envoy-internal", "true");
        }
        else if (hasEnvoyHeaders)
        {
            RemoveEnvoyControlHeaders(headers, edgeRequest);
        }

        if (config.UserAgent is { } serviceCluster)
        {
            // add_user_agent: who is calling, for the upstream (Envoy sets these after the
            // external-request cleanup, so they cannot be spoofed from outside).
            headers.Set("x-envoy-downstream-service-cluster", serviceCluster);
            if (!headers.TryGetValue(KnownHeader.UserAgent, out ReadOnlySpan<byte> agent) || agent.IsEmpty)
            {
                headers.Set(KnownHeader.UserAgent, serviceCluster);
            }

            if (config.LocalNodeId.Length > 0)
            {
                headers.Set("x-envoy-downstream-service-node", config.LocalNodeId);
            }
        }

        if (config.Via is { } via)
        {
            AppendCommaSeparated(headers, KnownHeader.Via, via);
        }

        if (edgeRequest && finalRemote is not null)
        {
            // Our first ingress point into the trusted network: say who the client was.
            headers.Set("x-envoy-external-address", (config.KeepIpv4MappedRemoteAddress ? finalRemote : Unmap(finalRemote)).ToString());
        }

        if (config.GenerateRequestId)
        {
            var keep = headers.Contains(KnownHeader.XRequestId) && (!edgeRequest || config.PreserveExternalRequestId);
            if (!keep)
            {
                Span<byte> bytes = stackalloc byte[36];
                WriteRequestId(bytes);
                headers.Set(KnownHeader.XRequestId, bytes);
            }
        }

        if (config.AppendXForwardedPort && stream.Info.DownstreamLocalAddress is { } listenerAddress
            && (config.XffNumTrustedHops == 0 || !headers.Contains("x-forwarded-port")))
        {
            // The port the client connected to; a previous hop's value is kept only when it is
            // trusted (xff_num_trusted_hops), as Envoy.
            headers.Set("x-forwarded-port", listenerAddress.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        StripTrailingHostDot(stream);
        StripHostPort(stream);
    }

    /// <summary>
    /// strip_trailing_host_dot (Envoy's HeaderUtility::stripTrailingHostDot, before the port is
    /// stripped): <c>example.com.</c> and <c>example.com.:8080</c> lose the dot.
    /// </summary>
    private static void StripTrailingHostDot(HttpStream stream)
    {
        if (!stream.Config.StripTrailingHostDot)
        {
            return;
        }

        var headers = stream.RequestHeaders.Headers;
        if (!headers.TryGetValue(KnownHeader.Host, out ReadOnlySpan<byte> host))
        {
            return;
        }

        var dot = TrailingHostDot(host);
        if (dot < 0)
        {
            return;
        }

        Span<byte> stripped = stackalloc byte[host.Length - 1];
        host[..dot].CopyTo(stripped);
        host[(dot + 1)..].CopyTo(stripped[dot..]);
        headers.Set(KnownHeader.Host, stripped);
    }

    /// <summary>Where the host part of an authority ends with a dot (before any port), or -1.</summary>
    internal static int TrailingHostDot(ReadOnlySpan<byte> authority)
    {
        var colon = PortStart(authority);
        var hostEnd = colon >= 0 ? colon : authority.Length;
        return hostEnd > 0 && authority[hostEnd - 1] == (byte)'.' ? hostEnd - 1 : -1;
    }

    /// <summary>
    /// The colon before an authority's port, or -1 without one: the last colon, unless it is inside
    /// an IPv6 literal (<c>[::1]</c>) or the authority is a bare IPv6 address.
    /// </summary>
    private static int PortStart(ReadOnlySpan<byte> authority)
    {
        var colon = authority.LastIndexOf((byte)':');
        return colon < 0 || authority[colon..].IndexOf((byte)']') >= 0 || (authority.IndexOf((byte)':') != colon && authority[0] != (byte)'[') ? -1 : colon;
    }

    /// <summary>
    /// strip_any_host_port / strip_matching_host_port (Envoy's maybeNormalizeHost): the port leaves
    /// the Host header itself, so the upstream sees what the route matched on.
    /// </summary>
    private static void StripHostPort(HttpStream stream)
    {
        var config = stream.Config;
        if (!config.StripAnyHostPort && !config.StripMatchingHostPort)
        {
            return;
        }

        var headers = stream.RequestHeaders.Headers;
        if (!headers.TryGetValue(KnownHeader.Host, out ReadOnlySpan<byte> host))
        {
            return;
        }

        var colon = PortStart(host);
        if (colon < 0)
        {
            return;
        }

        if (!config.StripAnyHostPort)
        {
            if (stream.Info.DownstreamLocalAddress is not { } local
                || !System.Buffers.Text.Utf8Parser.TryParse(host[(colon + 1)..], out int port, out var used) || used != host.Length - colon - 1 || port != local.Port)
            {
                return;
            }
        }

        Span<byte> stripped = stackalloc byte[colon];
        host[..colon].CopyTo(stripped);
        headers.Set(KnownHeader.Host, stripped);
    }

    /// <summary>
    /// Envoy's Utility::getLastAddressFromXFF: the address <paramref name="skip"/> entries from the
    /// right of x-forwarded-for, or null when there are not that many or it is not an IP.
    /// </summary>
    /// <summary>
    /// Envoy's Network::Utility::parseInternetAddressNoThrow (inet_pton): an IPv4 dotted quad or an
    /// IPv6 literal, no port, no brackets, no zone; null otherwise (IPAddress.TryParse alone would
    /// also take "1", "1.2" and hex forms).
    /// </summary>
    internal static IPAddress? ParseIpLiteral(ReadOnlySpan<byte> text)
    {
        if (text.IsEmpty || text.Length > 45 || text.IndexOfAny("[]% "u8) >= 0)
        {
            return null;
        }

        Span<char> chars = stackalloc char[text.Length];
        Encoding.ASCII.GetChars(text, chars);
        if (!IPAddress.TryParse(chars, out var address))
        {
            return null;
        }

        return address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && chars.Count('.') != 3 ? null : address;
    }

    internal static IPAddress? LastXffAddress(HttpHeaderMap headers, int skip, out bool single)
    {
        single = false;
        if (!headers.TryGetValue(KnownHeader.XForwardedFor, out ReadOnlySpan<byte> xff) || xff.IsEmpty)
        {
            return null;
        }

        single = xff.IndexOf((byte)',') < 0;
        var end = xff.Length;
        for (var i = 0; ; i++)
        {
            var comma = xff[..end].LastIndexOf((byte)',');
            if (i == skip)
            {
                return ParseIpLiteral(xff[(comma + 1)..end].Trim((byte)' ').Trim((byte)'\t'));
            }

            if (comma < 0)
            {
                return null;
            }

            end = comma;
        }
    }

    /// <summary>
    /// Drops a client's <c>x-envoy-internal</c> (only Legate decides that) in the one pass over the
    /// headers that also tells whether any other <c>x-envoy-*</c> header is there to clean up.
    /// </summary>
    private static bool RemoveInternalFlag(HttpHeaderMap headers)
    {
        var any = false;
        for (var i = headers.Count - 1; i >= 0; i--)
        {
            var name = headers.GetNameBytes(i);
            if (name.Length > 8 && Ascii.EqualsIgnoreCase(name[..8], "x-envoy-"u8))
            {
                if (Ascii.EqualsIgnoreCase(name, "x-envoy-internal"u8))
                {
                    headers.RemoveAt(i);
                }
                else
                {
                    any = true;
                }
            }
        }

        return any;
    }

    private static IPAddress Unmap(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>The response-side mutations, run after the encode filters, before the codec.</summary>
    public static void MutateResponseHeaders(HttpStream stream, HttpResponseHead head)
    {
        var config = stream.Config;
        var headers = head.Headers;
        switch (config.ServerHeaderTransformation)
        {
            case Hcm.Types.ServerHeaderTransformation.Overwrite:
                headers.Set(KnownHeader.Server, config.ServerName);
                break;
            case Hcm.Types.ServerHeaderTransformation.AppendIfAbsent when !headers.Contains(KnownHeader.Server):
                headers.Add(KnownHeader.Server, config.ServerName);
                break;
        }

        headers.Set(KnownHeader.Date, DateHeaderCache.Value);
        if (config.Via is { } via)
        {
            AppendCommaSeparated(headers, KnownHeader.Via, via);
        }

        if (config.AlwaysSetRequestIdInResponse && stream.RequestHeaders.Headers.TryGetValue(KnownHeader.XRequestId, out ReadOnlySpan<byte> id))
        {
            headers.Set(KnownHeader.XRequestId, id);
        }

        config.ProxyStatus?.Apply(stream.Info, head);
    }

    /// <summary>
    /// A random (version 4) UUID in its 36-character form. Request ids need uniqueness, not
    /// secrecy: a fast non-cryptographic generator, as Envoy's, instead of Guid.NewGuid, which asks
    /// the kernel for random bytes on every call on Linux.
    /// </summary>
    public static void WriteRequestId(Span<byte> destination)
    {
        // A local rather than stackalloc: a method with a loop and a localloc is compiled once,
        // fully optimised but without tiering's profile (it cannot move to on-stack replacement).
        UInt128 value = default;
        var random = System.Runtime.InteropServices.MemoryMarshal.AsBytes(new Span<UInt128>(ref value));
        Random.Shared.NextBytes(random);
        random[6] = (byte)((random[6] & 0x0F) | 0x40);
        random[8] = (byte)((random[8] & 0x3F) | 0x80);
        var hex = "0123456789abcdef"u8;
        var o = 0;
        for (var i = 0; i < 16; i++)
        {
            if (i is 4 or 6 or 8 or 10)
            {
                destination[o++] = (byte)'-';
            }

            destination[o++] = hex[random[i] >> 4];
            destination[o++] = hex[random[i] & 0xF];
        }
    }

    /// <summary>Loopback, RFC 1918 and unique-local addresses: Envoy's classic notion of an internal peer.</summary>
    public static bool IsInternalAddress(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (IPAddress.IsLoopback(address))
        {
            return true;
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            Span<byte> b = stackalloc byte[4];
            address.TryWriteBytes(b, out _);
            return b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) || (b[0] == 192 && b[1] == 168);
        }

        Span<byte> v6 = stackalloc byte[16];
        address.TryWriteBytes(v6, out _);
        return (v6[0] & 0xFE) == 0xFC;
    }

    private static void AppendXff(HttpHeaderMap headers, IPAddress address)
    {
        Span<char> chars = stackalloc char[64];
        address.TryFormat(chars, out var written);
        Span<byte> bytes = stackalloc byte[64];
        Encoding.ASCII.GetBytes(chars[..written], bytes);
        AppendCommaSeparated(headers, KnownHeader.XForwardedFor, bytes[..written]);
    }

    /// <summary>Appends <paramref name="value"/> to the (single) field, joining with ", " as Envoy does.</summary>
    private static void AppendCommaSeparated(HttpHeaderMap headers, KnownHeader header, ReadOnlySpan<byte> value)
    {
        var i = headers.IndexOf(header);
        if (i < 0)
        {
            headers.Add(header, value);
            return;
        }

        var existing = headers.GetValueBytes(i);
        var joined = existing.Length + 2 + value.Length <= 512 ? stackalloc byte[existing.Length + 2 + value.Length] : new byte[existing.Length + 2 + value.Length];
        existing.CopyTo(joined);
        joined[existing.Length] = (byte)',';
        joined[existing.Length + 1] = (byte)' ';
        value.CopyTo(joined[(existing.Length + 2)..]);
        headers.SetValueAt(i, joined);
    }

    /// <summary>
    /// The x-envoy-* request headers that steer Envoy's behaviour, which only internal requests may
    /// set (Envoy's list); the decorator and downstream service headers go too on an edge request.
    /// </summary>
    private static void RemoveEnvoyControlHeaders(HttpHeaderMap headers, bool edgeRequest)
    {
        foreach (var name in s_controlHeaders)
        {
            headers.Remove(name);
        }

        if (edgeRequest)
        {
            foreach (var name in s_edgeHeaders)
            {
                headers.Remove(name);
            }
        }
    }

    private static readonly string[] s_controlHeaders =
    [
        "x-envoy-retriable-status-codes", "x-envoy-retriable-header-names", "x-envoy-retry-on", "x-envoy-retry-grpc-on",
        "x-envoy-max-retries", "x-envoy-upstream-alt-stat-name", "x-envoy-upstream-rq-timeout-ms",
        "x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-upstream-rq-timeout-alt-response", "x-envoy-expected-rq-timeout-ms",
        "x-envoy-force-trace", "x-envoy-ip-tags", "x-envoy-original-url", "x-envoy-hedge-on-per-try-timeout",
    ];

    private static readonly string[] s_edgeHeaders = ["x-envoy-decorator-operation", "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node"];
}
