using System.Security.Cryptography;
using Legate.Config;
using Legate.Tls.OpenSsl;
using Proto = Envoy.Extensions.TransportSockets.Tls.V3.TlsSessionTicketKeys;

namespace Legate.Tls;

/// <summary>
/// Compiled <c>session_ticket_keys</c> (inline, or a Secret from SDS): Envoy's 80-byte keys, each
/// 16 bytes of name, 32 of HMAC-SHA256 secret and 32 of AES-256-CBC key. The first key seals new
/// tickets; every key opens one. Immutable; a rotated secret produces a new instance.
/// </summary>
internal sealed class SessionTicketKeys
{
    public const int KeySize = 80;

    private SessionTicketKeys(Key[] keys) => Keys = keys;

    public IReadOnlyList<Key> Keys { get; }

    /// <summary>Reads <paramref name="proto"/>; throws <see cref="ConfigException"/> naming the key on failure.</summary>
    public static SessionTicketKeys CompileOrThrow(Proto proto, string path)
    {
        var keysPath = FieldPath.Field(path, "keys");
        if (proto.Keys.Count == 0)
        {
            throw new ConfigException(keysPath, "at least one session ticket key is needed");
        }

        var keys = new Key[proto.Keys.Count];
        for (var i = 0; i < keys.Length; i++)
        {
            var keyPath = FieldPath.Index(keysPath, i);
            var bytes = DataSourceReader.ReadOrThrow(proto.Keys[i], keyPath);
            try
            {
                if (bytes.Length != KeySize)
                {
                    // Envoy's message.
                    throw new ConfigException(keyPath, $"Incorrect TLS session ticket key length. Length {bytes.Length}, expected length {KeySize}.");
                }

                keys[i] = new Key(bytes);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(bytes);
            }
        }

        return new SessionTicketKeys(keys);
    }

    /// <summary>Reads <paramref name="proto"/>; null after adding errors.</summary>
    public static SessionTicketKeys? Compile(Proto proto, string path, ConfigErrors errors)
    {
        try
        {
            return CompileOrThrow(proto, path);
        }
        catch (ConfigException ex)
        {
            errors.AddFrom(ex);

            return null;
        }
    }

    /// <summary>One key. The secrets live on the pinned heap: native code reads them during the ticket callback.</summary>
    internal sealed unsafe class Key
    {
        public Key(ReadOnlySpan<byte> bytes)
        {
            Name = bytes[..16].ToArray();
            HmacSecret = GC.AllocateArray<byte>(32, pinned: true);
            AesKey = GC.AllocateArray<byte>(32, pinned: true);
            bytes[16..48].CopyTo(HmacSecret);
            bytes[48..80].CopyTo(AesKey);
        }

        public byte[] Name { get; }

        private byte[] HmacSecret { get; }

        private byte[] AesKey { get; }

        /// <summary>Sets up OpenSSL's ticket cipher (AES-256-CBC) and MAC (HMAC-SHA256) contexts with this key.</summary>
        public bool Init(IntPtr cipher, IntPtr hmac, byte* iv, bool encrypt)
        {
            fixed (byte* aes = AesKey)
            fixed (byte* secret = HmacSecret)
            {
                var ok = encrypt
                    ? OpenSslNative.EVP_EncryptInit_ex(cipher, OpenSslNative.EVP_aes_256_cbc(), IntPtr.Zero, aes, iv) == 1
                    : OpenSslNative.EVP_DecryptInit_ex(cipher, OpenSslNative.EVP_aes_256_cbc(), IntPtr.Zero, aes, iv) == 1;
                if (!ok)
                {
                    return false;
                }

                fixed (byte* k = "key\0"u8)
                fixed (byte* d = "digest\0"u8)
                fixed (byte* s = "SHA256\0"u8)
                {
                    var parameters = stackalloc OpenSslNative.OsslParam[3];
                    parameters[0] = new OpenSslNative.OsslParam { Key = k, DataType = OpenSslNative.OSSL_PARAM_OCTET_STRING, Data = secret, DataSize = 32, ReturnSize = nuint.MaxValue };
                    parameters[1] = new OpenSslNative.OsslParam { Key = d, DataType = OpenSslNative.OSSL_PARAM_UTF8_STRING, Data = s, DataSize = 6, ReturnSize = nuint.MaxValue };
                    parameters[2] = default;
                    return OpenSslNative.EVP_MAC_CTX_set_params(hmac, parameters) == 1;
                }
            }
        }
    }
}
