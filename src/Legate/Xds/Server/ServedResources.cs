using System.Buffers;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Legate.Xds.Server;

/// <summary>
/// One version of one type's resources as the management server serves them: by name, and in
/// name order with each resource's wire encoding computed once. A push to a state-of-the-world
/// client then copies cached bytes (<see cref="SotwBody"/>) instead of serialising every
/// resource again, and a Delta push reuses each resource's version hash.
/// </summary>
internal sealed class ServedResources
{
    public static readonly ServedResources Empty = new(0, new Dictionary<string, Any>(StringComparer.Ordinal), null);

    /// <param name="previous">The version before: the encodings of the resources that did not change are taken from it.</param>
    public ServedResources(int version, Dictionary<string, Any> resources, ServedResources? previous)
    {
        Version = version;
        Resources = resources;
        var sorted = new ServedResource[resources.Count];
        var i = 0;
        foreach (var (name, any) in resources.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            sorted[i++] = previous?.ByName.GetValueOrDefault(name) is { } had && had.Any.Equals(any) ? had : new ServedResource(name, any);
        }

        Sorted = sorted;
        ByName = sorted.ToDictionary(r => r.Name, StringComparer.Ordinal);
    }

    public int Version { get; }

    /// <summary>Every resource by name.</summary>
    public Dictionary<string, Any> Resources { get; }

    /// <summary>Every resource in name order (the order responses list them).</summary>
    public ServedResource[] Sorted { get; }

    private Dictionary<string, ServedResource> ByName { get; }
}

/// <summary>One served resource, with its encodings made on first use and then kept.</summary>
internal sealed class ServedResource(string name, Any any)
{
    private byte[]? _entry;
    private string? _version;

    public string Name { get; } = name;

    public Any Any { get; } = any;

    /// <summary>The resource as one element of <c>DiscoveryResponse.resources</c>: its tag, its length and the Any.</summary>
    public byte[] Entry => _entry ??= new DiscoveryResponse { Resources = { Any } }.ToByteArray();

    /// <summary>Its Delta version: a hash of its bytes.</summary>
    public string Version => _version ??= Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Any.Value.Span), 0, 8).ToLowerInvariant();
}

/// <summary>
/// A state-of-the-world DiscoveryResponse written from its parts: version_info, the cached
/// entries of its resources, then type_url and nonce (the field order protobuf writes). Never
/// assembled in one buffer: the parts are copied into the stream's pipe.
/// </summary>
internal sealed class SotwBody
{
    private readonly byte[] _head;
    private readonly IReadOnlyList<ServedResource> _resources;
    private readonly byte[] _tail;

    public SotwBody(string version, string typeUrl, string nonce, IReadOnlyList<ServedResource> resources)
    {
        _head = new DiscoveryResponse { VersionInfo = version }.ToByteArray();
        _tail = new DiscoveryResponse { TypeUrl = typeUrl, Nonce = nonce }.ToByteArray();
        _resources = resources;
        long length = _head.Length + _tail.Length;
        foreach (var resource in resources)
        {
            length += resource.Entry.Length;
        }

        Length = checked((int)length);
    }

    public int Length { get; }

    public void WriteTo(IBufferWriter<byte> writer)
    {
        writer.Write(_head);
        foreach (var resource in _resources)
        {
            writer.Write(resource.Entry);
        }

        writer.Write(_tail);
    }
}
