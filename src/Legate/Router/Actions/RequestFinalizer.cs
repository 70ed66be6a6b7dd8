using Legate.Http;
using Legate.Http.Http1;
using Legate.Upstream;

namespace Legate.Router.Actions;

/// <summary>
/// What a forwarding route does to the request before it goes upstream, in Envoy's order
/// (RouteEntryImplBase::finalizeRequestHeaders): header mutations, then the host rewrite
/// (literal, header, path regex), then the path rewrite (with <c>x-envoy-original-path</c>);
/// <c>auto_host_rewrite</c> waits for the host (<see cref="ApplyAutoHostRewrite"/>).
/// </summary>
internal static class RequestFinalizer
{
    private static readonly byte[] s_originalPath = "x-envoy-original-path"u8.ToArray();

    public static void FinalizeRequestHeaders(HttpStream stream, HttpRequestHead head, RouteEntry route, bool insertOriginalPath)
    {
        HeaderMutation.ApplyAll(route.RequestHeaderMutations, stream, head.Headers);
        if (route.HostRewriteLiteral is { } literal)
        {
            UpdateAuthority(head, literal, route.AppendXForwardedHost);
        }
        else if (route.HostRewriteHeader is { } name)
        {
            if (head.Headers.GetValue(name) is { Length: > 0 } value)
            {
                UpdateAuthority(head, value, route.AppendXForwardedHost);
            }
        }
        else if (route.HostRewritePath is { } hostFromPath)
        {
            var path = head.Path;
            var end = path.AsSpan().IndexOfAny('?', '#');
            UpdateAuthority(head, hostFromPath.Apply(end < 0 ? path : path[..end]), route.AppendXForwardedHost);
        }

        if (route.PathRewrite is { } rewrite && head.MethodKind != HttpMethodKind.Connect)
        {
            var original = head.Path;
            if (insertOriginalPath)
            {
                head.Headers.Remove("x-envoy-original-path");
                head.Headers.Add(s_originalPath, head.PathBytes);
            }

            head.SetPath(rewrite.Apply(original));
        }
    }

    /// <summary><c>auto_host_rewrite</c>: the chosen host's hostname (when it has one) becomes the authority.</summary>
    public static void ApplyAutoHostRewrite(HttpRequestHead head, RouteEntry route, Host host)
    {
        if (route.AutoHostRewrite && host.Hostname.Length > 0)
        {
            UpdateAuthority(head, host.Hostname, route.AppendXForwardedHost);
        }
    }

    /// <summary>Envoy's Utility::updateAuthority: the old authority goes to x-forwarded-host first when asked.</summary>
    private static void UpdateAuthority(HttpRequestHead head, string authority, bool appendForwardedHost)
    {
        if (appendForwardedHost && head.Authority.Length > 0)
        {
            var old = System.Text.Encoding.Latin1.GetString(head.Authority);
            var index = head.Headers.IndexOf("x-forwarded-host"u8);
            if (index >= 0)
            {
                head.Headers.SetValueAt(index, head.Headers.GetValue(index) + "," + old);
            }
            else
            {
                head.Headers.Add("x-forwarded-host", old);
            }
        }

        head.Headers.Set(KnownHeader.Host, authority);
    }
}
