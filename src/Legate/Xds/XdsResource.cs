using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Legate.Xds;

/// <summary>One decoded, validated resource of an update, with its version (per resource in Delta, the response's in SotW).</summary>
internal sealed class XdsResource(string name, string version, IMessage message, DateTimeOffset lastUpdated)
{
    public string Name { get; } = name;

    public string Version { get; } = version;

    public IMessage Message { get; } = message;

    public DateTimeOffset LastUpdated { get; } = lastUpdated;

    public Any ToAny() => Any.Pack(Message);
}
