using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Legate.Http;

/// <summary>
/// The HCM's path handling before routing: <c>path_with_escaped_slashes_action</c> (%2F and %5C),
/// <c>normalize_path</c> (RFC 3986 §6.2.2: percent-encoded unreserved characters decoded, other
/// escapes' hex digits upper-cased, backslashes made slashes as Chromium's canonicaliser Envoy
/// uses does, then §5.2.4 dot-segment removal) and <c>merge_slashes</c>, in Envoy's order:
/// escaped slashes, normalization, slash merging. The query is never touched.
/// </summary>
internal static class PathNormalizer
{
    public enum Outcome
    {
        Unchanged,
        Changed,

        /// <summary>REJECT_REQUEST saw an escaped slash: 400.</summary>
        Reject,

        /// <summary>UNESCAPE_AND_REDIRECT saw an escaped slash: redirect to the unescaped path.</summary>
        Redirect,
    }

    /// <summary>Applies the configured steps to <paramref name="target"/> (path and query); the result in <paramref name="normalized"/>.</summary>
    public static Outcome Apply(string target, HttpConnectionManagerConfig config, out string normalized)
    {
        normalized = target;
        var queryAt = target.IndexOf('?');
        var path = queryAt < 0 ? target : target[..queryAt];
        var query = queryAt < 0 ? string.Empty : target[queryAt..];
        var outcome = Outcome.Unchanged;

        var action = config.PathWithEscapedSlashesAction;
        if (action is not (Hcm.Types.PathWithEscapedSlashesAction.ImplementationSpecificDefault or Hcm.Types.PathWithEscapedSlashesAction.KeepUnchanged)
            && HasEscapedSlash(path))
        {
            if (action == Hcm.Types.PathWithEscapedSlashesAction.RejectRequest)
            {
                return Outcome.Reject;
            }

            path = UnescapeSlashes(path);
            outcome = action == Hcm.Types.PathWithEscapedSlashesAction.UnescapeAndRedirect ? Outcome.Redirect : Outcome.Changed;
        }

        if (config.NormalizePath && path.Length > 0 && path[0] == '/')
        {
            var canonical = RemoveDotSegments(NormalizeEscapes(path));
            if (canonical != path)
            {
                path = canonical;
                outcome = outcome == Outcome.Unchanged ? Outcome.Changed : outcome;
            }
        }

        if (config.MergeSlashes && path.Contains("//", StringComparison.Ordinal))
        {
            var merged = new System.Text.StringBuilder(path.Length);
            foreach (var c in path)
            {
                if (c != '/' || merged.Length == 0 || merged[^1] != '/')
                {
                    merged.Append(c);
                }
            }

            path = merged.ToString();
            outcome = outcome == Outcome.Unchanged ? Outcome.Changed : outcome;
        }

        normalized = path + query;
        return outcome;
    }

    private static bool HasEscapedSlash(string path) =>
        path.Contains("%2F", StringComparison.OrdinalIgnoreCase) || path.Contains("%5C", StringComparison.OrdinalIgnoreCase);

    private static string UnescapeSlashes(string path) =>
        path.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase).Replace("%5C", "\\", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// RFC 3986 §6.2.2.1–2: <c>%41</c> → <c>A</c> for unreserved characters, <c>%2f</c> → <c>%2F</c>
    /// for the rest; a backslash becomes a slash. A malformed escape is left as it is.
    /// </summary>
    internal static string NormalizeEscapes(string path)
    {
        if (path.AsSpan().IndexOfAny('%', '\\') < 0)
        {
            return path;
        }

        var output = new System.Text.StringBuilder(path.Length);
        for (var i = 0; i < path.Length; i++)
        {
            var c = path[i];
            if (c == '\\')
            {
                output.Append('/');
                continue;
            }

            if (c == '%' && i + 2 < path.Length && Uri.IsHexDigit(path[i + 1]) && Uri.IsHexDigit(path[i + 2]))
            {
                var decoded = (char)((Uri.FromHex(path[i + 1]) << 4) | Uri.FromHex(path[i + 2]));
                if (char.IsAsciiLetterOrDigit(decoded) || decoded is '-' or '.' or '_' or '~')
                {
                    output.Append(decoded);
                }
                else
                {
                    output.Append('%').Append(char.ToUpperInvariant(path[i + 1])).Append(char.ToUpperInvariant(path[i + 2]));
                }

                i += 2;
                continue;
            }

            output.Append(c);
        }

        return output.ToString();
    }

    /// <summary>RFC 3986 §5.2.4 on an absolute path; <c>%2E</c> (any case) counts as a dot.</summary>
    internal static string RemoveDotSegments(string path)
    {
        var segments = path.Split('/');
        var output = new List<string>(segments.Length);
        for (var i = 1; i < segments.Length; i++)
        {
            var segment = segments[i];
            var last = i == segments.Length - 1;
            if (IsDot(segment, 1))
            {
                if (last)
                {
                    output.Add(string.Empty);
                }

                continue;
            }

            if (IsDot(segment, 2))
            {
                if (output.Count > 0)
                {
                    output.RemoveAt(output.Count - 1);
                }

                if (last)
                {
                    output.Add(string.Empty);
                }

                continue;
            }

            output.Add(segment);
        }

        return "/" + string.Join('/', output);
    }

    private static bool IsDot(string segment, int dots)
    {
        var decoded = segment.Replace("%2E", ".", StringComparison.OrdinalIgnoreCase);
        return decoded.Length == dots && decoded.AsSpan().IndexOfAnyExcept('.') < 0;
    }
}
