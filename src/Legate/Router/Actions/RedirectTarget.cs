using System.Globalization;
using Envoy.Config.Route.V3;
using Legate.Config;

namespace Legate.Router.Actions;

/// <summary>
/// A compiled <c>redirect</c> route action: computes the <c>location</c> of the 3xx answer from
/// the request by Envoy's rules (RouteEntryImplBase::newUri): scheme from <c>scheme_redirect</c> /
/// <c>https_redirect</c> or the request's <c>x-forwarded-proto</c>; host from <c>host_redirect</c>
/// or the request's host (its port dropped when a new port is given, or when the scheme changes
/// away from the default port of the old one); <c>port_redirect</c>; path from <c>path_redirect</c>
/// (whose own query wins), <c>prefix_rewrite</c> or <c>regex_rewrite</c>, else the request's;
/// <c>strip_query</c>.
/// </summary>
internal sealed class RedirectTarget
{
    private readonly string? _scheme;
    private readonly string? _host;
    private readonly string _port;
    private readonly string? _path;
    private readonly bool _pathHasQuery;
    private readonly PathRewrite? _rewrite;
    private readonly bool _stripQuery;

    private RedirectTarget(int status, string? scheme, string? host, string port, string? path, PathRewrite? rewrite, bool stripQuery)
    {
        Status = status;
        _scheme = scheme;
        _host = host;
        _port = port;
        _path = path;
        _pathHasQuery = path is not null && path.Contains('?', StringComparison.Ordinal);
        _rewrite = rewrite;
        _stripQuery = stripQuery;
    }

    /// <summary>301, 302, 303, 307 or 308.</summary>
    public int Status { get; }

    public static RedirectTarget Compile(RedirectAction config, RouteMatch match, string path, ConfigErrors errors)
    {
        var status = config.ResponseCode switch
        {
            RedirectAction.Types.RedirectResponseCode.Found => 302,
            RedirectAction.Types.RedirectResponseCode.SeeOther => 303,
            RedirectAction.Types.RedirectResponseCode.TemporaryRedirect => 307,
            RedirectAction.Types.RedirectResponseCode.PermanentRedirect => 308,
            _ => 301,
        };

        string? scheme = config.SchemeRewriteSpecifierCase switch
        {
            RedirectAction.SchemeRewriteSpecifierOneofCase.HttpsRedirect when config.HttpsRedirect => "https",
            RedirectAction.SchemeRewriteSpecifierOneofCase.SchemeRedirect => config.SchemeRedirect.ToLowerInvariant(),
            _ => null,
        };

        var port = config.PortRedirect != 0 ? ":" + config.PortRedirect.ToString(CultureInfo.InvariantCulture) : string.Empty;
        PathRewrite? rewrite = null;
        string? newPath = null;
        switch (config.PathRewriteSpecifierCase)
        {
            case RedirectAction.PathRewriteSpecifierOneofCase.PathRedirect:
                newPath = config.PathRedirect;
                break;
            case RedirectAction.PathRewriteSpecifierOneofCase.PrefixRewrite:
                rewrite = PathRewrite.ForPrefix(config.PrefixRewrite, match);
                break;
            case RedirectAction.PathRewriteSpecifierOneofCase.RegexRewrite:
                rewrite = PathRewrite.ForRegex(config.RegexRewrite, FieldPath.Field(path, "regex_rewrite"), errors);
                break;
        }

        return new RedirectTarget(status, scheme, config.HostRedirect.Length > 0 ? config.HostRedirect : null, port, newPath, rewrite, config.StripQuery);
    }

    /// <summary>The <c>location</c> for a request with this path, host and <c>x-forwarded-proto</c>.</summary>
    public string Location(string requestPath, string requestHost, string forwardedProto)
    {
        var scheme = _scheme ?? forwardedProto;
        var host = _host ?? RequestHost(requestHost, scheme, forwardedProto);
        string finalPath;
        if (_path is not null)
        {
            // A path_redirect with its own query keeps it (and strip_query does not apply to it);
            // without one, the request's query follows unless stripped.
            var query = requestPath.IndexOf('?');
            finalPath = _pathHasQuery || query < 0 ? _path : _path + requestPath[query..];
        }
        else
        {
            finalPath = _rewrite is null ? requestPath : _rewrite.Apply(requestPath);
        }

        if (!finalPath.StartsWith('/'))
        {
            finalPath = "/" + finalPath;
        }

        if (!_pathHasQuery && _stripQuery && finalPath.IndexOf('?') is var q and >= 0)
        {
            finalPath = finalPath[..q];
        }

        return string.Concat(scheme, "://", host, _port, finalPath);
    }

    /// <summary>The request's host, its port removed when a new port is given or the scheme leaves its default port.</summary>
    private string RequestHost(string host, string newScheme, string requestScheme)
    {
        if (host.Length == 0)
        {
            return host;
        }

        int portStart;
        if (host[0] == '[')
        {
            portStart = host.LastIndexOf("]:", StringComparison.Ordinal);
            portStart = portStart < 0 ? -1 : portStart + 1;
        }
        else
        {
            portStart = host.LastIndexOf(':');
        }

        if (portStart < 0)
        {
            return host;
        }

        var port = host.AsSpan(portStart);
        var remove = _port.Length > 0;
        if (!string.Equals(newScheme, requestScheme, StringComparison.Ordinal))
        {
            remove |= requestScheme == "https" && port.SequenceEqual(":443");
            remove |= requestScheme == "http" && port.SequenceEqual(":80");
        }

        return remove ? host[..portStart] : host;
    }

    /// <summary>For explain: the target with the request's parts shown as placeholders.</summary>
    public string Describe() =>
        $"{Status} to {_scheme ?? "<scheme>"}://{_host ?? "<host>"}{_port}{_path ?? (_rewrite is null ? "<path>" : "<path, " + _rewrite.Description + ">")}{(_stripQuery ? " (query stripped)" : string.Empty)}";
}
