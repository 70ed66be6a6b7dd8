namespace Legate.Http;

/// <summary>
/// The HCM's <c>local_reply_config</c>: how a local reply's status and body are rewritten before
/// it is sent. Without config, the reply goes out as the proxy made it.
/// </summary>
internal class LocalReplyConfig
{
    public static LocalReplyConfig Default { get; } = new();

    /// <summary>The status, body and content type to send for a local reply.</summary>
    public virtual LocalReply Map(HttpStream stream, int status, byte[] body) => new(status, body, null);
}

/// <summary>A local reply as it will be sent.</summary>
internal readonly record struct LocalReply(int Status, byte[] Body, byte[]? ContentType);
