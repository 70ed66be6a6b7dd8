using Google.Protobuf.WellKnownTypes;

namespace Legate.Xds;

/// <summary>
/// One resource of a response as it arrived, not decoded yet: the Any's type URL and payload
/// bytes, the name the response gives it (Delta's <c>Resource.name</c>; null in state of the
/// world) and its version. <see cref="Value"/> may point into the receive buffer of the response:
/// valid only while the response is processed (a resource kept is copied).
/// </summary>
internal readonly record struct XdsWireResource(string TypeUrl, ReadOnlyMemory<byte> Value, string? Name, string Version)
{
    public static XdsWireResource Of(Any any, string? name, string version) => new(any.TypeUrl, any.Value.Memory, name, version);
}
