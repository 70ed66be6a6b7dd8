using System.Text;

namespace Legate.Http.Http1;

/// <summary>
/// Reason phrases for written status lines. Like Envoy, the proxy writes its own phrase for the
/// code instead of forwarding the upstream's, and "Unknown" for codes it has no phrase for.
/// </summary>
internal static class ReasonPhrases
{
    private static readonly byte[][] s_phrases = Build();
    private static readonly byte[] s_unknown = "Unknown"u8.ToArray();

    public static ReadOnlySpan<byte> Get(int statusCode)
        => (uint)statusCode < (uint)s_phrases.Length && s_phrases[statusCode] is { } phrase ? phrase : s_unknown;

    private static byte[][] Build()
    {
        var table = new byte[600][];
        void Add(int code, string phrase) => table[code] = Encoding.ASCII.GetBytes(phrase);

        Add(100, "Continue");
        Add(101, "Switching Protocols");
        Add(102, "Processing");
        Add(103, "Early Hints");
        Add(200, "OK");
        Add(201, "Created");
        Add(202, "Accepted");
        Add(203, "Non-Authoritative Information");
        Add(204, "No Content");
        Add(205, "Reset Content");
        Add(206, "Partial Content");
        Add(207, "Multi-Status");
        Add(208, "Already Reported");
        Add(226, "IM Used");
        Add(300, "Multiple Choices");
        Add(301, "Moved Permanently");
        Add(302, "Found");
        Add(303, "See Other");
        Add(304, "Not Modified");
        Add(305, "Use Proxy");
        Add(307, "Temporary Redirect");
        Add(308, "Permanent Redirect");
        Add(400, "Bad Request");
        Add(401, "Unauthorized");
        Add(402, "Payment Required");
        Add(403, "Forbidden");
        Add(404, "Not Found");
        Add(405, "Method Not Allowed");
        Add(406, "Not Acceptable");
        Add(407, "Proxy Authentication Required");
        Add(408, "Request Timeout");
        Add(409, "Conflict");
        Add(410, "Gone");
        Add(411, "Length Required");
        Add(412, "Precondition Failed");
        Add(413, "Payload Too Large");
        Add(414, "URI Too Long");
        Add(415, "Unsupported Media Type");
        Add(416, "Range Not Satisfiable");
        Add(417, "Expectation Failed");
        Add(421, "Misdirected Request");
        Add(422, "Unprocessable Entity");
        Add(423, "Locked");
        Add(424, "Failed Dependency");
        Add(425, "Too Early");
        Add(426, "Upgrade Required");
        Add(428, "Precondition Required");
        Add(429, "Too Many Requests");
        Add(431, "Request Header Fields Too Large");
        Add(500, "Internal Server Error");
        Add(501, "Not Implemented");
        Add(502, "Bad Gateway");
        Add(503, "Service Unavailable");
        Add(504, "Gateway Timeout");
        Add(505, "HTTP Version Not Supported");
        Add(506, "Variant Also Negotiates");
        Add(507, "Insufficient Storage");
        Add(508, "Loop Detected");
        Add(510, "Not Extended");
        Add(511, "Network Authentication Required");
        return table;
    }
}
