namespace Legate.Http.Http1;

/// <summary>The four forms of request-target (RFC 9112 §3.2).</summary>
internal enum RequestTargetForm : byte
{
    /// <summary><c>/path?query</c>: the usual form.</summary>
    Origin,

    /// <summary><c>http://host/path</c>: sent to forward proxies; the Host header is replaced by the target's authority.</summary>
    Absolute,

    /// <summary><c>host:port</c>: CONNECT only.</summary>
    Authority,

    /// <summary><c>*</c>: OPTIONS only.</summary>
    Asterisk,
}
