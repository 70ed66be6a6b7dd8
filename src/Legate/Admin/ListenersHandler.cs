using Envoy.Admin.V3;
using Envoy.Config.Core.V3;
using Legate.Network;
using Legate.Server;
using Microsoft.AspNetCore.Http;

namespace Legate.Admin;

/// <summary>
/// <c>/listeners</c>: one <c>name::address</c> line per listener, or with <c>?format=json</c>
/// Envoy's <c>envoy.admin.v3.Listeners</c> (name, bound local_address and additional_local_addresses of each).
/// </summary>
internal sealed class ListenersHandler(IServerInstance server)
{
    public const string HelpText = "print listener info";

    public ValueTask<AdminResponse> HandleAsync(HttpContext context)
    {
        var listeners = server.ActiveListeners;
        var format = context.Request.Query["format"].ToString();
        if (format == "json")
        {
            var proto = new Listeners();
            foreach (var listener in listeners)
            {
                var status = new ListenerStatus { Name = listener.Name, LocalAddress = ToAddress(listener.BoundEndpoint ?? listener.Endpoint) };
                status.AdditionalLocalAddresses.AddRange(listener.AdditionalEndpoints.Select(ToAddress));
                proto.ListenerStatuses.Add(status);
            }

            return ValueTask.FromResult(AdminResponse.Json(ProtoJson.Format(proto)));
        }

        if (format.Length > 0 && format != "text")
        {
            return ValueTask.FromResult(AdminResponse.Text("usage: /listeners?format=(json|text)\n", StatusCodes.Status400BadRequest));
        }

        var text = new System.Text.StringBuilder();
        foreach (var listener in listeners)
        {
            text.Append(listener.Name).Append("::").Append(SocketAddresses.Format(listener.BoundEndpoint ?? listener.Endpoint)).Append('\n');
        }

        return ValueTask.FromResult(AdminResponse.Text(text.ToString()));
    }

    private static Address ToAddress(System.Net.IPEndPoint endpoint) => new()
    {
        SocketAddress = new SocketAddress { Address = endpoint.Address.ToString(), PortValue = (uint)endpoint.Port },
    };
}
