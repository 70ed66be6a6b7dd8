using System.Text;
using Google.Protobuf;

namespace Legate.Xds;

/// <summary>
/// Reads a state-of-the-world <c>DiscoveryResponse</c> straight from its wire bytes without
/// materialising its resources: each <c>Any</c> stays a slice of the buffer, so a response that
/// repeats 3,000 unchanged resources for the one that changed costs a walk over its fields and
/// one byte comparison per resource (<see cref="XdsSubscription.ProcessAsync"/>), not a copy and
/// a decode of each. Malformed bytes throw <see cref="InvalidDataException"/> (a resource's own
/// bytes are checked when it is decoded).
/// </summary>
internal static class DiscoveryResponseReader
{
    // DiscoveryResponse: version_info = 1, resources = 2, canary = 3, type_url = 4, nonce = 5, control_plane = 6.
    private const int VersionInfoField = 1;
    private const int ResourcesField = 2;
    private const int TypeUrlField = 4;
    private const int NonceField = 5;

    // google.protobuf.Any: type_url = 1, value = 2.
    private const int AnyTypeUrlField = 1;
    private const int AnyValueField = 2;

    /// <summary>The fields Legate uses, and the resources as slices of <paramref name="message"/>.</summary>
    public static SotwResponse Read(ReadOnlyMemory<byte> message)
    {
        var reader = new WireReader(message.Span);
        string version = string.Empty, typeUrl = string.Empty, nonce = string.Empty;
        var anys = new List<(string TypeUrl, ReadOnlyMemory<byte> Value)>();
        // Every resource of a response normally has the same type URL: decoded once, not per resource.
        ReadOnlySpan<byte> lastTypeUrl = default;
        var lastTypeUrlText = string.Empty;
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (wireType != WireFormat.WireType.LengthDelimited || field is not (VersionInfoField or ResourcesField or TypeUrlField or NonceField))
            {
                reader.Skip(wireType);
                continue;
            }

            var bytes = reader.ReadLengthDelimited();
            switch (field)
            {
                case VersionInfoField:
                    version = Encoding.UTF8.GetString(bytes);
                    break;
                case TypeUrlField:
                    typeUrl = Encoding.UTF8.GetString(bytes);
                    break;
                case NonceField:
                    nonce = Encoding.UTF8.GetString(bytes);
                    break;
                default:
                    var value = ReadAny(message.Slice(reader.Position - bytes.Length, bytes.Length), out var anyTypeUrl);
                    if (!anyTypeUrl.SequenceEqual(lastTypeUrl))
                    {
                        lastTypeUrl = anyTypeUrl;
                        lastTypeUrlText = Encoding.UTF8.GetString(anyTypeUrl);
                    }

                    anys.Add((lastTypeUrlText, value));
                    break;
            }
        }

        var resources = new XdsWireResource[anys.Count];
        for (var i = 0; i < resources.Length; i++)
        {
            resources[i] = new XdsWireResource(anys[i].TypeUrl, anys[i].Value, null, version);
        }

        return new SotwResponse(version, typeUrl, nonce, resources);
    }

    /// <summary>
    /// The string in field <paramref name="field"/> of a resource's top level (the last one, as
    /// the parser keeps), without decoding the rest; null when it is absent or the bytes are
    /// malformed. A hint only: callers trust it after comparing the resource's bytes.
    /// </summary>
    public static string? StringField(ReadOnlySpan<byte> message, int field)
    {
        ReadOnlySpan<byte> found = default;
        var any = false;
        try
        {
            var reader = new WireReader(message);
            while (reader.TryReadTag(out var number, out var wireType))
            {
                if (number == field && wireType == WireFormat.WireType.LengthDelimited)
                {
                    found = reader.ReadLengthDelimited();
                    any = true;
                }
                else
                {
                    reader.Skip(wireType);
                }
            }
        }
        catch (InvalidDataException)
        {
            return null;
        }

        return any ? Encoding.UTF8.GetString(found) : null;
    }

    /// <summary>An Any's value (a slice of <paramref name="any"/>) and its type URL (bytes).</summary>
    private static ReadOnlyMemory<byte> ReadAny(ReadOnlyMemory<byte> any, out ReadOnlySpan<byte> typeUrl)
    {
        var reader = new WireReader(any.Span);
        typeUrl = default;
        var value = ReadOnlyMemory<byte>.Empty;
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (wireType == WireFormat.WireType.LengthDelimited && field is AnyTypeUrlField or AnyValueField)
            {
                var bytes = reader.ReadLengthDelimited();
                if (field == AnyTypeUrlField)
                {
                    typeUrl = bytes;
                }
                else
                {
                    value = any.Slice(reader.Position - bytes.Length, bytes.Length);
                }
            }
            else
            {
                reader.Skip(wireType);
            }
        }

        return value;
    }

    /// <summary>The fields of a DiscoveryResponse that the client acts on.</summary>
    internal sealed record SotwResponse(string VersionInfo, string TypeUrl, string Nonce, IReadOnlyList<XdsWireResource> Resources);

    /// <summary>A forward-only reader of protobuf wire format (varints, fixed fields, length-delimited fields).</summary>
    private ref struct WireReader(ReadOnlySpan<byte> buffer)
    {
        private readonly ReadOnlySpan<byte> _buffer = buffer;

        public int Position { get; private set; }

        public bool TryReadTag(out int field, out WireFormat.WireType wireType)
        {
            if (Position >= _buffer.Length)
            {
                field = 0;
                wireType = default;
                return false;
            }

            var tag = ReadVarint();
            field = (int)(tag >> 3);
            wireType = (WireFormat.WireType)(tag & 7);
            if (field <= 0 || tag >> 3 > int.MaxValue)
            {
                throw new InvalidDataException($"invalid tag {tag} at byte {Position}");
            }

            return true;
        }

        public ReadOnlySpan<byte> ReadLengthDelimited()
        {
            var length = ReadVarint();
            if (length > (ulong)(_buffer.Length - Position))
            {
                throw new InvalidDataException($"a field of {length} bytes at byte {Position} runs past the end of the message");
            }

            var bytes = _buffer.Slice(Position, (int)length);
            Position += (int)length;
            return bytes;
        }

        public void Skip(WireFormat.WireType wireType)
        {
            switch (wireType)
            {
                case WireFormat.WireType.Varint:
                    ReadVarint();
                    break;
                case WireFormat.WireType.Fixed64:
                    Advance(8);
                    break;
                case WireFormat.WireType.Fixed32:
                    Advance(4);
                    break;
                case WireFormat.WireType.LengthDelimited:
                    ReadLengthDelimited();
                    break;
                default:
                    // Groups (deprecated) appear in no xDS message.
                    throw new InvalidDataException($"unsupported wire type {(int)wireType} at byte {Position}");
            }
        }

        private void Advance(int count)
        {
            if (count > _buffer.Length - Position)
            {
                throw new InvalidDataException($"the message ends inside a field at byte {Position}");
            }

            Position += count;
        }

        private ulong ReadVarint()
        {
            ulong result = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                if (Position >= _buffer.Length)
                {
                    throw new InvalidDataException($"the message ends inside a varint at byte {Position}");
                }

                var b = _buffer[Position++];
                result |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80)
                {
                    return result;
                }
            }

            throw new InvalidDataException($"a varint longer than 10 bytes at byte {Position}");
        }
    }
}
