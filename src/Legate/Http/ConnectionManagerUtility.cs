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

    /// <summary>The request-side mutations, run before the HTTP filters see the request.</summary>
    public static void MutateRequestHeaders(HttpStream stream, bool isTls)
    {
        var config = stream.Config;
        var headers = stream.RequestHeaders.Headers;
        var remote = stream.Info.DownstreamRemoteAddress;
        var internalRequest = false;
        if (config.UseRemoteAddress)
        {
            // Edge proxy: the peer is the client, or (with trusted hops) the address that many hops back.
            if (!config.SkipXffAppend && remote is not null)
            {
                AppendXff(headers, remote.Address);
            }

            internalRequest = remote is not null && config.XffNumTrustedHops == 0 && config.InternalAddresses.Contains(remote.Address)
                && headers.CountOf(KnownHeader.XForwardedFor) <= 1 && !HasMultipleXffEntries(headers);
            headers.Set(KnownHeader.XForwardedProto, isTls ? s_https : s_http);
            if (!internalRequest)
            {
                // An external request may not smuggle in Envoy's internal control headers.
                RemoveEnvoyInternalHeaders(headers);
                if (remote is not null && config.XffNumTrustedHops == 0)
                {
                    headers.Set("x-envoy-external-address", remote.Address.ToString());
                }
            }
        }
        else if (!headers.Contains(KnownHeader.XForwardedProto))
        {
            headers.Set(KnownHeader.XForwardedProto, isTls ? s_https : s_http);
        }

        if (internalRequest)
        {
            headers.Set("x-envoy-internal", "true");
        }
        else if (config.UseRemoteAddress)
        {
            headers.Remove("x-envoy-internal");
        }

        if (config.GenerateRequestId)
        {
            var keep = headers.Contains(KnownHeader.XRequestId) && (!config.UseRemoteAddress || internalRequest || config.PreserveExternalRequestId);
            if (!keep)
            {
                Span<byte> bytes = stackalloc byte[36];
                WriteRequestId(bytes);
                headers.Set(KnownHeader.XRequestId, bytes);
            }
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

        if (config.Tracing is { } tracing)
        {
            stream.Info.TraceReason = tracing.Apply(headers);
        }

        if (config.Via is { } via)
        {
            AppendCommaSeparated(headers, KnownHeader.Via, via);
        }
    }

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
    }

    /// <summary>
    /// A random (version 4) UUID in its 36-character form. Request ids need uniqueness, not
    /// secrecy: a fast non-cryptographic generator, as Envoy's, instead of Guid.NewGuid, which asks
    /// the kernel for random bytes on every call on Linux.
    /// </summary>
    public static void WriteRequestId(Span<byte> destination)
    {
        Span<byte> random = stackalloc byte[16];
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
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        Span<char> chars = stackalloc char[64];
        address.TryFormat(chars, out var written);
        Span<byte> bytes = stackalloc byte[64];
        Encoding.ASCII.GetBytes(chars[..written], bytes);
        AppendCommaSeparated(headers, KnownHeader.XForwardedFor, bytes[..written]);
    }

    private static bool HasMultipleXffEntries(HttpHeaderMap headers) =>
        headers.TryGetValue(KnownHeader.XForwardedFor, out ReadOnlySpan<byte> value) && value.IndexOf((byte)',') >= 0;

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

    /// <summary>The x-envoy-* request headers that steer Envoy's behaviour; external clients may not set them.</summary>
    private static void RemoveEnvoyInternalHeaders(HttpHeaderMap headers)
    {
        for (var i = headers.Count - 1; i >= 0; i--)
        {
            var name = headers.GetNameBytes(i);
            if (name.Length > 8 && Ascii.EqualsIgnoreCase(name[..8], "x-envoy-"u8)
                && !Ascii.EqualsIgnoreCase(name, "x-envoy-external-address"u8))
            {
                headers.RemoveAt(i);
            }
        }
    }
}
