using System.Text;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Legate.Config;

namespace Legate.Http;

/// <summary>
/// What one route does when it matches (matching itself is <c>Router/Matching</c>'s). Interim:
/// only direct responses are acted on; route and redirect actions belong to the router and
/// answer 503 until then.
/// </summary>
internal sealed class RouteEntry
{
    private int _notImplementedLogged;

    private RouteEntry(string name, RouteActionKind action, int status, byte[] body, string actionName)
    {
        Name = name;
        Action = action;
        Status = status;
        Body = body;
        ActionName = actionName;
    }

    public string Name { get; }

    public RouteActionKind Action { get; }

    /// <summary>The status of a direct response.</summary>
    public int Status { get; }

    /// <summary>The body of a direct response (empty when none).</summary>
    public byte[] Body { get; }

    /// <summary>The action's proto field name (<c>route</c>, <c>redirect</c>, …), for messages.</summary>
    public string ActionName { get; }

    /// <summary>True the first time it is called: lets the connection manager log an unimplemented action once.</summary>
    public bool FirstNotImplementedHit() => Interlocked.Exchange(ref _notImplementedLogged, 1) == 0;

    public static RouteEntry Compile(Route route, string path, uint maxBodyBytes, ConfigErrors errors)
    {
        var action = RouteActionKind.NotImplemented;
        var status = 0;
        var body = Array.Empty<byte>();
        if (route.ActionCase == Route.ActionOneofCase.DirectResponse)
        {
            action = RouteActionKind.DirectResponse;
            status = (int)route.DirectResponse.Status;
            var bodyPath = FieldPath.Field(FieldPath.Field(path, "direct_response"), "body");
            body = route.DirectResponse.Body is { } source ? ReadBody(source, bodyPath, maxBodyBytes, errors) : [];
        }
        else if (route.ActionCase == Route.ActionOneofCase.None)
        {
            errors.Add(path, "an action (route, redirect, direct_response, …) is required");
        }

        return new RouteEntry(route.Name, action, status, body, ActionFieldName(route.ActionCase));
    }

    private static byte[] ReadBody(DataSource source, string path, uint maxBytes, ConfigErrors errors)
    {
        byte[] body;
        switch (source.SpecifierCase)
        {
            case DataSource.SpecifierOneofCase.InlineString:
                body = Encoding.UTF8.GetBytes(source.InlineString);
                break;
            case DataSource.SpecifierOneofCase.InlineBytes:
                body = source.InlineBytes.ToByteArray();
                break;
            case DataSource.SpecifierOneofCase.Filename:
                try
                {
                    // Envoy reads the file once, when the config is loaded.
                    body = File.ReadAllBytes(source.Filename);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    errors.Add(FieldPath.Field(path, "filename"), $"cannot read \"{source.Filename}\": {ex.Message}");
                    return [];
                }

                break;
            case DataSource.SpecifierOneofCase.EnvironmentVariable:
                var value = Environment.GetEnvironmentVariable(source.EnvironmentVariable);
                if (value is null)
                {
                    errors.Add(FieldPath.Field(path, "environment_variable"), $"environment variable \"{source.EnvironmentVariable}\" is not set");
                    return [];
                }

                body = Encoding.UTF8.GetBytes(value);
                break;
            default:
                return [];
        }

        if (body.Length > maxBytes)
        {
            errors.Add(path, $"direct response body is {body.Length} bytes, more than max_direct_response_body_size_bytes ({maxBytes})");
        }

        return body;
    }

    private static string ActionFieldName(Route.ActionOneofCase action) => action switch
    {
        Route.ActionOneofCase.Route_ => "route",
        Route.ActionOneofCase.Redirect => "redirect",
        Route.ActionOneofCase.DirectResponse => "direct_response",
        Route.ActionOneofCase.FilterAction => "filter_action",
        Route.ActionOneofCase.NonForwardingAction => "non_forwarding_action",
        _ => "none",
    };
}
