using System.Net;

namespace Legate.Http.Http2;

/// <summary>
/// The endpoint an <see cref="Http2CodecServer"/>'s Kestrel "listens" on. Not an address: Kestrel
/// needs an endpoint to bind, and <see cref="Http2ConnectionListener"/> accepts whatever Legate's
/// listener pushes. The name shows up in Kestrel's log lines.
/// </summary>
internal sealed class Http2BridgeEndPoint(string name) : EndPoint
{
    public string Name { get; } = name;

    public override string ToString() => "legate-h2:" + Name;
}
