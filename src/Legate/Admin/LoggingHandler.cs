using System.Text;
using Legate.Server.Logging;
using Microsoft.AspNetCore.Http;

namespace Legate.Admin;

/// <summary>
/// <c>/logging</c>: lists every logger's level; POST <c>?level=L</c> sets all, <c>?name=L</c> one,
/// <c>?paths=name:L,name:L</c> several (Envoy's forms). A change is POST-only as in Envoy; a plain
/// GET without parameters lists the levels (read-only, a convenience Envoy lacks).
/// </summary>
internal sealed class LoggingHandler(LogManager logs)
{
    public const string HelpText = "query/change logging levels";

    public ValueTask<AdminResponse> HandleAsync(HttpContext context)
    {
        var query = context.Request.Query;
        if (query.Count == 0)
        {
            return ValueTask.FromResult(AdminResponse.Text(List()));
        }

        if (!HttpMethods.IsPost(context.Request.Method))
        {
            return ValueTask.FromResult(AdminResponse.Text($"Method {context.Request.Method} not allowed, POST required.", StatusCodes.Status405MethodNotAllowed));
        }

        if (query.Count != 1 || !TryApply(query.Keys.First(), query[query.Keys.First()].ToString()))
        {
            return ValueTask.FromResult(AdminResponse.Text(Usage() + List(), StatusCodes.Status404NotFound));
        }

        return ValueTask.FromResult(AdminResponse.Text(List()));
    }

    private bool TryApply(string key, string value)
    {
        switch (key)
        {
            case "level":
                if (!LogLevels.TryParse(value, out var all))
                {
                    return false;
                }

                foreach (var name in LogComponents.All)
                {
                    logs.Get(name).Level = all;
                }

                return true;
            case "paths":
                // Validate everything before changing anything.
                var changes = new List<(string Name, LogLevel Level)>();
                foreach (var pair in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    var colon = pair.LastIndexOf(':');
                    if (colon <= 0 || !LogComponents.IsKnown(pair[..colon]) || !LogLevels.TryParse(pair[(colon + 1)..], out var level))
                    {
                        return false;
                    }

                    changes.Add((pair[..colon], level));
                }

                foreach (var (name, level) in changes)
                {
                    logs.Get(name).Level = level;
                }

                return changes.Count > 0;
            default:
                if (!LogComponents.IsKnown(key) || !LogLevels.TryParse(value, out var one))
                {
                    return false;
                }

                logs.Get(key).Level = one;
                return true;
        }
    }

    private string List()
    {
        var text = new StringBuilder("active loggers:\n");
        foreach (var name in LogComponents.All)
        {
            text.Append("  ").Append(name).Append(": ").Append(LogLevels.Name(logs.Get(name).Level)).Append('\n');
        }

        return text.ToString();
    }

    private static string Usage() =>
        "usage: /logging?<name>=<level> (change single level)\n" +
        "usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)\n" +
        "usage: /logging?level=<level> (change all levels)\n" +
        "levels: trace debug info warning error critical off\n";
}
