using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Legate.Network;

namespace Legate.Extensions.Filters.Listener.OriginalDst;

/// <summary>
/// <c>envoy.filters.listener.original_dst</c>: on Linux, reads the destination a connection had
/// before an iptables REDIRECT/DNAT (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST) and makes it the local
/// address for filter chain matching. Without NAT the kernel has none and the address stays. With
/// the listener's <c>use_original_dst</c> the connection is then handed off to the listener owning
/// that address (Network/Listener, ListenerManager.FindHandOffTarget).
/// </summary>
internal sealed class OriginalDstFilter : IListenerFilter
{
    private const int SolIp = 0;
    private const int SolIpv6 = 41;
    private const int SoOriginalDst = 80;

    public ValueTask<bool> OnAcceptAsync(ListenerFilterContext context, CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsLinux() && TryGetOriginalDestination(context.Socket, out var destination) && !destination.Equals(context.LocalEndPoint))
        {
            context.LocalEndPoint = destination;
            context.LocalAddressRestored = true;
        }

        return ValueTask.FromResult(true);
    }

    internal static bool TryGetOriginalDestination(Socket socket, out IPEndPoint destination)
    {
        destination = null!;
        Span<byte> address = stackalloc byte[28];
        try
        {
            var v6 = socket.AddressFamily == AddressFamily.InterNetworkV6 && !(socket.LocalEndPoint is IPEndPoint { Address.IsIPv4MappedToIPv6: true });
            var length = socket.GetRawSocketOption(v6 ? SolIpv6 : SolIp, SoOriginalDst, address);
            // struct sockaddr_in / sockaddr_in6: family (host order), port (network order), address.
            var port = BinaryPrimitives.ReadUInt16BigEndian(address[2..]);
            if (length >= 16 && address[0] == 2)
            {
                destination = new IPEndPoint(new IPAddress(address.Slice(4, 4)), port);
                return true;
            }

            if (length >= 24 && address[0] == 10)
            {
                destination = new IPEndPoint(new IPAddress(address.Slice(8, 16)), port);
                return true;
            }
        }
        catch (SocketException)
        {
            // ENOENT: no NAT entry for this connection.
        }

        return false;
    }
}
