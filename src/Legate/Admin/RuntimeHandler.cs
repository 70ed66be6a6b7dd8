using Legate.Server;
using Microsoft.AspNetCore.Http;

namespace Legate.Admin;

/// <summary><c>/runtime</c> (Envoy's layers-and-entries JSON) and <c>/runtime_modify</c> (POST, admin layer).</summary>
internal sealed class RuntimeHandler(IServerInstance server)
{
    public const string RuntimeHelp = "print runtime values";
    public const string ModifyHelp = "Adds or modifies runtime values as passed in query parameters. To delete a previously added key, use an empty string as the value. Note that deletion only applies to overrides added via this endpoint; values loaded from disk can be modified via override but not deleted. E.g. ?key1=value1&key2=value2...";

    public ValueTask<AdminResponse> RuntimeAsync(HttpContext context) =>
        ValueTask.FromResult(server.Runtime is { } runtime
            ? AdminResponse.Json(runtime.ToJson() + "\n")
            : AdminResponse.Json("{\n \"layers\": [],\n \"entries\": {}\n}\n"));

    public async ValueTask<AdminResponse> ModifyAsync(HttpContext context)
    {
        var values = new List<KeyValuePair<string, string>>();
        foreach (var (key, value) in context.Request.Query)
        {
            values.Add(new(key, value.ToString()));
        }

        // Envoy also takes the pairs from a form body.
        if (context.Request.HasFormContentType)
        {
            var form = await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
            foreach (var (key, value) in form)
            {
                values.Add(new(key, value.ToString()));
            }
        }

        if (values.Count == 0)
        {
            return AdminResponse.Text("usage: /runtime_modify?key1=value1&key2=value2&keyN=valueN\n        or send the parameters as form values\nuse an empty value to remove a previously added override", StatusCodes.Status400BadRequest);
        }

        if (server.Runtime is not { } runtime || !runtime.Modify(values))
        {
            return AdminResponse.Text("No admin layer specified", StatusCodes.Status503ServiceUnavailable);
        }

        return AdminResponse.Text("OK\n");
    }
}
