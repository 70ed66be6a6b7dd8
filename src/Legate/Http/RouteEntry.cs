using System.Text;
using System.Text.RegularExpressions;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Legate.Config;

namespace Legate.Http;

/// <summary>
/// One compiled route: its path match and what to do on a match. Interim: only direct responses
/// are acted on here; route and redirect actions belong to the router and answer 503 until then.
/// </summary>
internal sealed class RouteEntry
{
    private readonly PathMatchKind _kind;
    private readonly string _pathValue;
    private readonly StringComparison _comparison;
    private readonly Regex? _regex;
    private int _notImplementedLogged;

    private RouteEntry(string name, PathMatchKind kind, string pathValue, bool caseSensitive, Regex? regex, RouteActionKind action, int status, byte[] body, string actionName)
    {
        Name = name;
        _kind = kind;
        _pathValue = pathValue;
        _comparison = caseSensitive ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;
        _regex = regex;
        Action = action;
        Status = status;
        Body = body;
        ActionName = actionName;
    }

    private enum PathMatchKind
    {
        Prefix,
        Path,
        PathSeparatedPrefix,
        Regex,
        Never,
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

    /// <summary>Matches the request path without its query string, as Envoy's path matchers do.</summary>
    public bool Matches(string path) => _kind switch
    {
        PathMatchKind.Prefix => path.StartsWith(_pathValue, _comparison),
        PathMatchKind.Path => path.Equals(_pathValue, _comparison),
        PathMatchKind.PathSeparatedPrefix => path.StartsWith(_pathValue, _comparison)
            && (path.Length == _pathValue.Length || path[_pathValue.Length] == '/'),
        PathMatchKind.Regex => _regex!.IsMatch(path),
        _ => false,
    };

    public static RouteEntry Compile(Route route, string path, uint maxBodyBytes, ConfigErrors errors)
    {
        var match = route.Match ?? new RouteMatch();
        var matchPath = FieldPath.Field(path, "match");
        var caseSensitive = match.CaseSensitive ?? true;
        var kind = PathMatchKind.Never;
        var value = string.Empty;
        Regex? regex = null;
        switch (match.PathSpecifierCase)
        {
            case RouteMatch.PathSpecifierOneofCase.Prefix:
                kind = PathMatchKind.Prefix;
                value = match.Prefix;
                break;
            case RouteMatch.PathSpecifierOneofCase.Path:
                kind = PathMatchKind.Path;
                value = match.Path;
                break;
            case RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix:
                kind = PathMatchKind.PathSeparatedPrefix;
                value = match.PathSeparatedPrefix;
                break;
            case RouteMatch.PathSpecifierOneofCase.SafeRegex:
                kind = PathMatchKind.Regex;
                regex = CompileRegex(match.SafeRegex.Regex, FieldPath.Field(FieldPath.Field(matchPath, "safe_regex"), "regex"), errors);
                if (regex is null)
                {
                    kind = PathMatchKind.Never;
                }

                break;
            case RouteMatch.PathSpecifierOneofCase.None:
                errors.Add(matchPath, "a path specifier (prefix, path, safe_regex, path_separated_prefix, …) is required");
                break;
            default:
                errors.Warn(matchPath, $"path specifier is not implemented yet; route '{route.Name}' never matches");
                break;
        }

        // Ignoring a criterion would widen the match (a header-gated canary route would take all
        // traffic), so a route using one we do not evaluate yet never matches instead.
        if (kind != PathMatchKind.Never)
        {
            foreach (var unimplemented in UnimplementedCriteria(match))
            {
                errors.Warn(FieldPath.Field(matchPath, unimplemented), $"match criterion is not implemented yet; route '{route.Name}' never matches");
                kind = PathMatchKind.Never;
            }
        }

        var action = RouteActionKind.NotImplemented;
        var status = 0;
        var body = Array.Empty<byte>();
        var actionName = ActionFieldName(route.ActionCase);
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

        return new RouteEntry(route.Name, kind, value, caseSensitive, regex, action, status, body, actionName);
    }

    private static IEnumerable<string> UnimplementedCriteria(RouteMatch match)
    {
        if (match.Headers.Count > 0)
        {
            yield return "headers";
        }

        if (match.QueryParameters.Count > 0)
        {
            yield return "query_parameters";
        }

        if (match.Grpc is not null)
        {
            yield return "grpc";
        }

        if (match.RuntimeFraction is not null)
        {
            yield return "runtime_fraction";
        }

        if (match.TlsContext is not null)
        {
            yield return "tls_context";
        }

        if (match.DynamicMetadata.Count > 0)
        {
            yield return "dynamic_metadata";
        }
    }

    private static Regex? CompileRegex(string pattern, string path, ConfigErrors errors)
    {
        try
        {
            // Envoy's regexes are RE2: full match, linear time. NonBacktracking keeps the linear time.
            return new Regex("^(?:" + pattern + ")$", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking);
        }
        catch (ArgumentException ex)
        {
            errors.Add(path, $"invalid regex: {ex.Message}");
            return null;
        }
        catch (NotSupportedException ex)
        {
            errors.Add(path, $"regex uses a construct RE2 does not support: {ex.Message}");
            return null;
        }
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
