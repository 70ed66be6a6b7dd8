using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace Legate.Upstream;

/// <summary>
/// The hashes Envoy's consistent-hashing load balancers place hosts with, so a fleet of Envoys and
/// Legates with the same hosts agree on the assignment: xxHash64 (seed 0, or 1 for Maglev's skip)
/// and the 64-bit MurmurHash2 of libstdc++'s <c>std::hash</c> (Envoy's MURMUR_HASH_2, seed
/// 0xc70f6907), both over the UTF-8 bytes of the key.
/// </summary>
internal static class ConsistentHash
{
    /// <summary>Envoy's <c>MurmurHash::STD_HASH_SEED</c>.</summary>
    public const ulong StdHashSeed = 0xc70f6907UL;

    /// <summary>The key a host is hashed by: metadata <c>envoy.lb</c> / <c>hash_key</c>, else the hostname or the address ("ip:port", "[v6]:port").</summary>
    public static string HostKey(Host host, bool useHostname)
    {
        if (host.Metadata is { } metadata
            && metadata.FilterMetadata.TryGetValue("envoy.lb", out var lb)
            && lb.Fields.TryGetValue("hash_key", out var value)
            && value.KindCase == Google.Protobuf.WellKnownTypes.Value.KindOneofCase.StringValue
            && value.StringValue.Length > 0)
        {
            return value.StringValue;
        }

        return useHostname ? host.Hostname : Legate.Network.SocketAddresses.Format(host.Address);
    }

    public static ulong XxHash64(string key, ulong seed = 0) => WithBytes(key, seed, static (bytes, s) => System.IO.Hashing.XxHash64.HashToUInt64(bytes, (long)s));

    public static ulong MurmurHash2(string key, ulong seed = StdHashSeed) => WithBytes(key, seed, static (bytes, s) => MurmurHash2(bytes, s));

    /// <summary>libstdc++'s 64-bit <c>_Hash_bytes</c> (MurmurHash64A with its own tail handling).</summary>
    public static ulong MurmurHash2(ReadOnlySpan<byte> data, ulong seed)
    {
        const ulong mul = (0xc6a4a793UL << 32) + 0x5bd1e995UL;
        var alignedLength = data.Length & ~7;
        var hash = seed ^ ((ulong)data.Length * mul);
        for (var i = 0; i < alignedLength; i += 8)
        {
            var word = ShiftMix(BinaryPrimitives.ReadUInt64LittleEndian(data[i..]) * mul) * mul;
            hash ^= word;
            hash *= mul;
        }

        var tail = data.Length & 7;
        if (tail != 0)
        {
            // The remaining bytes as a little-endian number.
            ulong word = 0;
            for (var i = tail - 1; i >= 0; i--)
            {
                word = (word << 8) + data[alignedLength + i];
            }

            hash ^= word;
            hash *= mul;
        }

        hash = ShiftMix(hash) * mul;
        return ShiftMix(hash);
    }

    private static ulong ShiftMix(ulong v) => v ^ (v >> 47);

    private static ulong WithBytes(string key, ulong seed, Func<ReadOnlySpan<byte>, ulong, ulong> hash)
    {
        var length = Encoding.UTF8.GetByteCount(key);
        if (length <= 256)
        {
            Span<byte> buffer = stackalloc byte[length];
            Encoding.UTF8.GetBytes(key, buffer);
            return hash(buffer, seed);
        }

        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var written = Encoding.UTF8.GetBytes(key, rented);
            return hash(rented.AsSpan(0, written), seed);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
