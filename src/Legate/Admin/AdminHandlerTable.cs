using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Legate.Admin;

/// <summary>
/// The admin endpoints, by exact path. Adding an endpoint is one <see cref="Add"/> call; <c>/help</c>,
/// the home page and the 404 text are all generated from this table.
/// </summary>
internal sealed class AdminHandlerTable
{
    private readonly Dictionary<string, AdminHandler> _handlers = new(StringComparer.Ordinal);

    /// <summary>The handlers sorted by path, the order Envoy prints them in.</summary>
    public IEnumerable<AdminHandler> Sorted => _handlers.Values.Where(h => h.Present).OrderBy(h => h.Path, StringComparer.Ordinal);

    /// <summary>Adds an endpoint; a path may be registered once. <paramref name="isPresent"/>: see <see cref="AdminHandler.IsPresent"/>.</summary>
    public void Add(string path, string helpText, bool mutatesState, Func<HttpContext, ValueTask<AdminResponse>> handler, Func<bool>? isPresent = null)
    {
        if (path.Length == 0 || path[0] != '/' || path.IndexOfAny(['&', '"', '\'', '<', '>', '?', ':']) >= 0)
        {
            // The path is written unescaped into the home page HTML and must be a plain URL path.
            throw new ArgumentException($"invalid admin path \"{path}\"", nameof(path));
        }

        if (!_handlers.TryAdd(path, new AdminHandler(path, helpText, mutatesState, handler, isPresent)))
        {
            throw new ArgumentException($"admin path \"{path}\" is already registered", nameof(path));
        }
    }

    public AdminHandler? Find(string path) => _handlers.GetValueOrDefault(path) is { Present: true } handler ? handler : null;

    /// <summary>Envoy's help text: <c>admin commands are:</c> then one <c>  /path: help</c> line each, with its parameters' lines under it.</summary>
    public string HelpText()
    {
        var sb = new StringBuilder("admin commands are:\n");
        foreach (var handler in Sorted)
        {
            sb.Append("  ").Append(handler.Path);
            if (handler.MutatesState)
            {
                sb.Append(" (POST)");
            }

            sb.Append(": ").Append(handler.HelpText).Append('\n');

            // Envoy prints each query parameter under its endpoint.
            foreach (var parameter in AdminParams.For(handler.Path))
            {
                sb.Append("      ").Append(parameter.Id).Append(": ").Append(parameter.Help);
                if (parameter.Choices is { } choices)
                {
                    sb.Append("; One of (").AppendJoin(", ", choices).Append(')');
                }

                sb.Append('\n');
            }
        }

        return sb.ToString();
    }

    /// <summary>
    /// Envoy's admin home page list as an HTML table: every endpoint but <c>/</c> with its help text.
    /// Relative links, so the page also works when embedded under another path. State-changing
    /// endpoints are POST buttons, never links a crawler could follow.
    /// </summary>
    public string IndexHtml()
    {
        var sb = new StringBuilder("<table class=\"admin-index\">\n");
        foreach (var handler in Sorted)
        {
            if (handler.Path == "/")
            {
                continue;
            }

            var target = handler.Path[1..];
            var link = handler.MutatesState
                ? $"<form action='{target}' method='post'><button>{target}</button></form>"
                : $"<a href='{target}'>{target}</a>";
            sb.Append("<tr><td>").Append(link).Append("</td><td>")
              .Append(WebUtility.HtmlEncode(handler.HelpText)).Append("</td></tr>\n");
        }

        return sb.Append("</table>\n").ToString();
    }
}
