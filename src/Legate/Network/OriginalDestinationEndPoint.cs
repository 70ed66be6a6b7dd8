using System.Net;

namespace Legate.Network;

/// <summary>
/// A connection's local address that a listener filter restored (original_dst from
/// SO_ORIGINAL_DST, proxy_protocol from the PROXY header): Envoy's <c>localAddressRestored()</c>.
/// The address itself carries the fact, so every layer that already passes the local address
/// along (codecs, stream info, tcp_proxy) tells an ORIGINAL_DST cluster where the connection was
/// going without a flag of its own. Equal to a plain <see cref="IPEndPoint"/> with the same address.
/// </summary>
internal sealed class OriginalDestinationEndPoint(IPAddress address, int port) : IPEndPoint(address, port)
{
    public static OriginalDestinationEndPoint From(IPEndPoint endPoint) =>
        endPoint as OriginalDestinationEndPoint ?? new OriginalDestinationEndPoint(endPoint.Address, endPoint.Port);
}
