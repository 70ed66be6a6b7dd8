using Legate.Admin;
using Legate.Server;
using Microsoft.AspNetCore.Http;

namespace Legate.Explain;

/// <summary>
/// Admin <c>/explain?url=…[&amp;method=…][&amp;header=name:value]…[&amp;listener=…|&amp;port=…]</c>: the same
/// explanation as <c>legate explain</c>, for the configuration the running server holds.
/// </summary>
internal sealed class ExplainAdminHandler(IServerInstance server)
{
    public const string HelpText =
        "explain which listener, filter chain, virtual host and route a request would take (params: url, method, header=name:value, listener, port)";

    public ValueTask<AdminResponse> HandleAsync(HttpContext context)
    {
        var query = context.Request.Query;
        var args = new List<string> { "-c", "(live configuration)" };
        foreach (var (param, flag) in new[] { ("listener", "--listener"), ("port", "--port") })
        {
            if (query[param] is { Count: > 0 } value)
            {
                args.Add(flag);
                args.Add(value[0] ?? "");
            }
        }

        foreach (var header in query["header"])
        {
            args.Add("-H");
            args.Add(header ?? "");
        }

        args.Add(query["method"] is { Count: > 0 } method ? method[0] ?? "GET" : "GET");
        if (query["url"] is not { Count: > 0 } url)
        {
            return ValueTask.FromResult(AdminResponse.Text("error: the url parameter is required, e.g. /explain?url=http://example.com/path\n", 400));
        }

        args.Add(url[0] ?? "");
        if (!ExplainCommand.TryParse(args.ToArray(), out var request, out var problem))
        {
            return ValueTask.FromResult(AdminResponse.Text($"error: {problem}\n", 400));
        }

        var lines = new List<string>();
        var ok = ExplainCommand.Explain(server.Bootstrap.StaticResources?.Listeners ?? [], request, lines);
        return ValueTask.FromResult(AdminResponse.Text(string.Join("\n", lines) + "\n", ok ? 200 : 400));
    }
}
