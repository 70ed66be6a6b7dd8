using System.Text;

namespace Legate.Http.Http1;

/// <summary>
/// The methods Envoy's HTTP/1 parsers accept when <c>allow_custom_methods</c> is off (the
/// http-parser set), as interned strings: parsing a known method allocates nothing.
/// </summary>
internal static class HttpMethods
{
    private static readonly (string Name, byte[] Bytes, HttpMethodKind Kind)[] s_known = Build(
        ("GET", HttpMethodKind.Get),
        ("POST", HttpMethodKind.Post),
        ("PUT", HttpMethodKind.Put),
        ("HEAD", HttpMethodKind.Head),
        ("DELETE", HttpMethodKind.Delete),
        ("OPTIONS", HttpMethodKind.Options),
        ("PATCH", HttpMethodKind.Patch),
        ("CONNECT", HttpMethodKind.Connect),
        ("TRACE", HttpMethodKind.Trace),
        ("ACL", HttpMethodKind.Other),
        ("BIND", HttpMethodKind.Other),
        ("CHECKOUT", HttpMethodKind.Other),
        ("COPY", HttpMethodKind.Other),
        ("LINK", HttpMethodKind.Other),
        ("LOCK", HttpMethodKind.Other),
        ("M-SEARCH", HttpMethodKind.Other),
        ("MERGE", HttpMethodKind.Other),
        ("MKACTIVITY", HttpMethodKind.Other),
        ("MKCALENDAR", HttpMethodKind.Other),
        ("MKCOL", HttpMethodKind.Other),
        ("MOVE", HttpMethodKind.Other),
        ("NOTIFY", HttpMethodKind.Other),
        ("PROPFIND", HttpMethodKind.Other),
        ("PROPPATCH", HttpMethodKind.Other),
        ("PURGE", HttpMethodKind.Other),
        ("REBIND", HttpMethodKind.Other),
        ("REPORT", HttpMethodKind.Other),
        ("SEARCH", HttpMethodKind.Other),
        ("SOURCE", HttpMethodKind.Other),
        ("SUBSCRIBE", HttpMethodKind.Other),
        ("UNBIND", HttpMethodKind.Other),
        ("UNLINK", HttpMethodKind.Other),
        ("UNLOCK", HttpMethodKind.Other),
        ("UNSUBSCRIBE", HttpMethodKind.Other));

    public static string Get => "GET";

    public static string Head => "HEAD";

    public static string Connect => "CONNECT";

    /// <summary>
    /// Finds a known method (case-sensitive: methods are, RFC 9110 §9.1). Returns false for anything
    /// else; the caller decides whether a custom token is acceptable.
    /// </summary>
    public static bool TryGetKnown(ReadOnlySpan<byte> method, out string name, out HttpMethodKind kind)
    {
        // The table is short and the common methods come first; a length check rejects most rows.
        foreach (var (n, bytes, k) in s_known)
        {
            if (bytes.Length == method.Length && method.SequenceEqual(bytes))
            {
                name = n;
                kind = k;
                return true;
            }
        }

        name = "";
        kind = HttpMethodKind.Other;
        return false;
    }

    /// <summary>The kind of a method given as a string (for heads built by code rather than parsed).</summary>
    public static HttpMethodKind KindOf(string method)
    {
        foreach (var (n, _, k) in s_known)
        {
            if (n == method)
            {
                return k;
            }
        }

        return HttpMethodKind.Other;
    }

    private static (string, byte[], HttpMethodKind)[] Build(params (string Name, HttpMethodKind Kind)[] methods)
    {
        var table = new (string, byte[], HttpMethodKind)[methods.Length];
        for (int i = 0; i < methods.Length; i++)
        {
            table[i] = (methods[i].Name, Encoding.ASCII.GetBytes(methods[i].Name), methods[i].Kind);
        }

        return table;
    }
}
