using Envoy.Admin.V3;
using Envoy.Config.Core.V3;
using Legate.Network;
using Legate.Server;
using Microsoft.AspNetCore.Http;

namespace Legate.Admin;

/// <summary>
/// <c>/listeners</c>: one <c>name::address</c> line per listener, or with <c>?format=json</c>
/// Envoy's <c>envoy.admin.v3.Listeners</c> (name and bound local_address of each).
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
                var endpoint = listener.BoundEndpoint ?? listener.Endpoint;
                proto.ListenerStatuses.Add(new ListenerStatus
                {
                    Name = listener.Name,
                    LocalAddress = new Address
                    {
                        SocketAddress = new SocketAddress { Address = endpoint.Address.ToString(), PortValue = (uint)endpoint.Port },
                    },
                });
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
}
