using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Legate.Xds;

/// <summary>One decoded, validated resource of an update, with its version (per resource in Delta, the response's in SotW).</summary>
internal sealed class XdsResource(string name, string version, IMessage message, DateTimeOffset lastUpdated, ByteString? encoded = null, bool isUnchanged = false)
{
    public string Name { get; } = name;

    public string Version { get; } = version;

    public IMessage Message { get; } = message;

    public DateTimeOffset LastUpdated { get; } = lastUpdated;

    /// <summary>The bytes the resource arrived as: the next response carrying the same bytes is not decoded again.</summary>
    public ByteString? Encoded { get; } = encoded;

    /// <summary>True when the update carried this resource with the content already in force (handlers skip it).</summary>
    public bool IsUnchanged { get; } = isUnchanged;

    public Any ToAny() => Any.Pack(Message);
}
