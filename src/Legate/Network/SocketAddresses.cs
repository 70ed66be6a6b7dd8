using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Envoy.Config.Core.V3;
using Legate.Config;

namespace Legate.Network;

/// <summary>Turns Envoy <c>Address</c> messages into endpoints, and prints endpoints as Envoy does.</summary>
internal static class SocketAddresses
{
    /// <summary>
    /// The TCP endpoint of <paramref name="address"/>, or null with the reason added to
    /// <paramref name="errors"/> under <paramref name="path"/>.
    /// </summary>
    public static IPEndPoint? ToTcpEndpoint(Address? address, string path, ConfigErrors errors)
    {
        if (address is null || address.AddressCase == Address.AddressOneofCase.None)
        {
            errors.Add(path, "an address is required");
            return null;
        }

        if (address.AddressCase != Address.AddressOneofCase.SocketAddress)
        {
            var kind = address.AddressCase == Address.AddressOneofCase.Pipe ? "pipe" : "envoy_internal_address";
            errors.Add(FieldPath.Field(path, kind), "only socket_address is implemented yet");
            return null;
        }

        var socketPath = FieldPath.Field(path, "socket_address");
        var socket = address.SocketAddress;
        if (socket.Protocol != Envoy.Config.Core.V3.SocketAddress.Types.Protocol.Tcp)
        {
            errors.Add(FieldPath.Field(socketPath, "protocol"), "only TCP is implemented yet");
            return null;
        }

        if (!IPAddress.TryParse(socket.Address, out var ip))
        {
            // Envoy resolves listener and admin addresses as IP literals only.
            errors.Add(FieldPath.Field(socketPath, "address"), $"\"{socket.Address}\" is not a valid IPv4 or IPv6 address");
            return null;
        }

        if (socket.PortSpecifierCase == Envoy.Config.Core.V3.SocketAddress.PortSpecifierOneofCase.NamedPort)
        {
            errors.Add(FieldPath.Field(socketPath, "named_port"), "named ports are not supported; use port_value");
            return null;
        }

        if (socket.PortValue > IPEndPoint.MaxPort)
        {
            errors.Add(FieldPath.Field(socketPath, "port_value"), $"{socket.PortValue} is not a valid port (0-65535)");
            return null;
        }

        return new IPEndPoint(ip, (int)socket.PortValue);
    }

    /// <summary>Envoy's spelling of an endpoint: <c>127.0.0.1:10000</c>, <c>[::1]:10000</c>.</summary>
    public static string Format(IPEndPoint endpoint) =>
        endpoint.AddressFamily == AddressFamily.InterNetworkV6
            ? $"[{endpoint.Address}]:{endpoint.Port.ToString(CultureInfo.InvariantCulture)}"
            : $"{endpoint.Address}:{endpoint.Port.ToString(CultureInfo.InvariantCulture)}";
}
