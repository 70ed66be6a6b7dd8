using System.Text;

namespace Legate.Http.Http1;

/// <summary>
/// The static table behind <see cref="KnownHeader"/>: lowercase names as strings (interned once,
/// so a parsed request never allocates a string for a known name) and as bytes (written as is),
/// and a case-insensitive lookup from wire bytes that allocates nothing.
/// </summary>
internal static class KnownHeaders
{
    private static readonly string[] s_names =
    [
        "",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "expect",
        "http2-settings",
        "content-type",
        "user-agent",
        "accept",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "cookie",
        "set-cookie",
        "date",
        "server",
        "cache-control",
        "authorization",
        "proxy-authorization",
        "proxy-authenticate",
        "www-authenticate",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-request-id",
        "x-real-ip",
        "x-envoy-original-path",
        "x-envoy-upstream-service-time",
        "forwarded",
        "via",
        "location",
        "content-encoding",
        "content-range",
        "etag",
        "last-modified",
        "expires",
        "age",
        "referer",
        "origin",
        "pragma",
        "vary",
        "range",
        "if-none-match",
        "if-modified-since",
        "if-match",
        "alt-svc",
        "strict-transport-security",
        "access-control-allow-origin",
        "traceparent",
        "tracestate",
        "grpc-status",
        "grpc-message",
        "grpc-timeout",
    ];

    private static readonly byte[][] s_nameBytes;

    // Candidates by name length: a lookup compares against the few names of the same length.
    private static readonly KnownHeader[][] s_byLength;

    static KnownHeaders()
    {
        if (s_names.Length != (int)KnownHeader.GrpcTimeout + 1 || s_names.Length > 64)
        {
            throw new InvalidOperationException("KnownHeaders table and KnownHeader enum disagree.");
        }

        s_nameBytes = new byte[s_names.Length][];
        int maxLength = 0;
        for (int i = 0; i < s_names.Length; i++)
        {
            s_nameBytes[i] = Encoding.ASCII.GetBytes(s_names[i]);
            maxLength = Math.Max(maxLength, s_names[i].Length);
        }

        var buckets = new List<KnownHeader>[maxLength + 1];
        for (int i = 1; i < s_names.Length; i++)
        {
            (buckets[s_names[i].Length] ??= []).Add((KnownHeader)i);
        }

        s_byLength = new KnownHeader[maxLength + 1][];
        for (int i = 0; i <= maxLength; i++)
        {
            s_byLength[i] = buckets[i]?.ToArray() ?? [];
        }
    }

    public static int Count => s_names.Length;

    /// <summary>The lowercase name of a known header (interned).</summary>
    public static string GetName(KnownHeader header) => s_names[(int)header];

    /// <summary>The lowercase name of a known header as ASCII bytes.</summary>
    public static ReadOnlySpan<byte> GetNameBytes(KnownHeader header) => s_nameBytes[(int)header];

    /// <summary>The known header with this name, ignoring ASCII case; <see cref="KnownHeader.None"/> otherwise.</summary>
    public static KnownHeader Lookup(ReadOnlySpan<byte> name)
    {
        if (name.Length >= s_byLength.Length)
        {
            return KnownHeader.None;
        }

        foreach (KnownHeader candidate in s_byLength[name.Length])
        {
            if (Ascii.EqualsIgnoreCase(name, s_nameBytes[(int)candidate]))
            {
                return candidate;
            }
        }

        return KnownHeader.None;
    }

    /// <summary>The known header with this name, ignoring ASCII case; <see cref="KnownHeader.None"/> otherwise.</summary>
    public static KnownHeader Lookup(ReadOnlySpan<char> name)
    {
        if (name.Length >= s_byLength.Length)
        {
            return KnownHeader.None;
        }

        foreach (KnownHeader candidate in s_byLength[name.Length])
        {
            if (Ascii.EqualsIgnoreCase(s_nameBytes[(int)candidate], name))
            {
                return candidate;
            }
        }

        return KnownHeader.None;
    }
}
