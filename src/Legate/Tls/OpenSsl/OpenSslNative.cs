using System.Runtime.InteropServices;

namespace Legate.Tls.OpenSsl;

/// <summary>
/// The few libssl / libcrypto 3 entry points the OpenSSL engine calls: the same libraries .NET's
/// SslStream runs on under Linux, so nothing new is loaded. Macros of the C API (SSL_CTX_set_*)
/// are spelled out as their SSL_CTX_ctrl commands; the constants are OpenSSL 3's public ones.
/// </summary>
internal static unsafe partial class OpenSslNative
{
    private const string Ssl = "libssl.so.3";
    private const string Crypto = "libcrypto.so.3";

    public const int SSL_ERROR_NONE = 0;
    public const int SSL_ERROR_SSL = 1;
    public const int SSL_ERROR_WANT_READ = 2;
    public const int SSL_ERROR_WANT_WRITE = 3;
    public const int SSL_ERROR_SYSCALL = 5;
    public const int SSL_ERROR_ZERO_RETURN = 6;

    public const int SSL_VERIFY_PEER = 1;
    public const int SSL_VERIFY_FAIL_IF_NO_PEER_CERT = 2;

    public const ulong SSL_OP_IGNORE_UNEXPECTED_EOF = 1UL << 7;
    public const ulong SSL_OP_NO_TICKET = 1UL << 14;
    public const ulong SSL_OP_CIPHER_SERVER_PREFERENCE = 1UL << 22;
    public const ulong SSL_OP_NO_RENEGOTIATION = 1UL << 30;

    public const int SSL_CTRL_SET_SESS_CACHE_MODE = 44;
    public const int SSL_CTRL_SET_TLSEXT_SERVERNAME_CB = 53;
    public const int SSL_CTRL_SET_GROUPS_LIST = 92;
    public const int SSL_CTRL_SET_SIGALGS_LIST = 98;
    public const int SSL_CTRL_SET_MIN_PROTO_VERSION = 123;
    public const int SSL_CTRL_SET_MAX_PROTO_VERSION = 124;
    public const int SSL_CTRL_GET_NEGOTIATED_GROUP = 134;

    public const int SSL_SESS_CACHE_OFF = 0;
    public const int SSL_SESS_CACHE_SERVER = 2;

    public const int SSL_TLSEXT_ERR_OK = 0;
    public const int SSL_TLSEXT_ERR_ALERT_FATAL = 2;
    public const int SSL_TLSEXT_ERR_NOACK = 3;

    public const int TLSEXT_NAMETYPE_host_name = 0;
    public const int OPENSSL_NPN_NEGOTIATED = 1;
    public const int BIO_C_SET_BUF_MEM_EOF_RETURN = 130;
    public const int CRYPTO_EX_INDEX_SSL = 0;
    public const int X509_V_ERR_CERT_REJECTED = 28;
    public const int SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE = 199;
    public const int SSL_R_CERTIFICATE_VERIFY_FAILED = 134;

    public const uint OSSL_PARAM_UTF8_STRING = 4;
    public const uint OSSL_PARAM_OCTET_STRING = 5;

    /// <summary>OpenSSL 3's <c>OSSL_PARAM</c> (64-bit layout).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct OsslParam
    {
        public byte* Key;
        public uint DataType;
        public void* Data;
        public nuint DataSize;
        public nuint ReturnSize;
    }

    // libssl
    [LibraryImport(Ssl)] public static partial IntPtr TLS_server_method();
    [LibraryImport(Ssl)] public static partial IntPtr SSL_CTX_new(IntPtr method);
    [LibraryImport(Ssl)] public static partial void SSL_CTX_free(IntPtr ctx);
    [LibraryImport(Ssl)] public static partial nint SSL_CTX_ctrl(IntPtr ctx, int cmd, nint larg, IntPtr parg);
    [LibraryImport(Ssl)] public static partial nint SSL_CTX_callback_ctrl(IntPtr ctx, int cmd, IntPtr fp);
    [LibraryImport(Ssl)] public static partial ulong SSL_CTX_set_options(IntPtr ctx, ulong options);
    [LibraryImport(Ssl)] public static partial int SSL_CTX_set_cipher_list(IntPtr ctx, byte* list);
    [LibraryImport(Ssl)] public static partial int SSL_CTX_set_ciphersuites(IntPtr ctx, byte* list);
    [LibraryImport(Ssl)] public static partial nint SSL_CTX_set_timeout(IntPtr ctx, nint seconds);
    [LibraryImport(Ssl)] public static partial int SSL_CTX_set_session_id_context(IntPtr ctx, byte* sid, uint length);
    [LibraryImport(Ssl)] public static partial void SSL_CTX_set_verify(IntPtr ctx, int mode, IntPtr callback);
    [LibraryImport(Ssl)] public static partial void SSL_CTX_set_cert_verify_callback(IntPtr ctx, IntPtr callback, IntPtr arg);
    [LibraryImport(Ssl)] public static partial void SSL_CTX_set_alpn_select_cb(IntPtr ctx, IntPtr callback, IntPtr arg);
    [LibraryImport(Ssl)] public static partial int SSL_CTX_set_tlsext_ticket_key_evp_cb(IntPtr ctx, IntPtr callback);

    [LibraryImport(Ssl)] public static partial IntPtr SSL_new(IntPtr ctx);
    [LibraryImport(Ssl)] public static partial void SSL_free(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial void SSL_set_bio(IntPtr ssl, IntPtr rbio, IntPtr wbio);
    [LibraryImport(Ssl)] public static partial void SSL_set_accept_state(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial int SSL_do_handshake(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial int SSL_read_ex(IntPtr ssl, byte* buffer, nuint count, out nuint read);
    [LibraryImport(Ssl)] public static partial int SSL_write_ex(IntPtr ssl, byte* buffer, nuint count, out nuint written);
    [LibraryImport(Ssl)] public static partial int SSL_get_error(IntPtr ssl, int ret);
    [LibraryImport(Ssl)] public static partial int SSL_shutdown(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial nint SSL_ctrl(IntPtr ssl, int cmd, nint larg, IntPtr parg);
    [LibraryImport(Ssl)] public static partial int SSL_set_session_id_context(IntPtr ssl, byte* sid, uint length);
    [LibraryImport(Ssl)] public static partial int SSL_set_ex_data(IntPtr ssl, int index, IntPtr data);
    [LibraryImport(Ssl)] public static partial IntPtr SSL_get_ex_data(IntPtr ssl, int index);
    [LibraryImport(Ssl)] public static partial IntPtr SSL_get_servername(IntPtr ssl, int type);
    [LibraryImport(Ssl)] public static partial int SSL_use_cert_and_key(IntPtr ssl, IntPtr x509, IntPtr key, IntPtr chain, int replace);
    [LibraryImport(Ssl)] public static partial IntPtr SSL_get_version(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial IntPtr SSL_get_current_cipher(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial IntPtr SSL_CIPHER_get_name(IntPtr cipher);
    [LibraryImport(Ssl)] public static partial void SSL_get0_alpn_selected(IntPtr ssl, out IntPtr data, out uint length);
    [LibraryImport(Ssl)] public static partial IntPtr SSL_get1_peer_certificate(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial IntPtr SSL_get_peer_cert_chain(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial int SSL_session_reused(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial int SSL_get_ex_data_X509_STORE_CTX_idx();
    [LibraryImport(Ssl)] public static partial int SSL_select_next_proto(out IntPtr output, out byte outputLength, byte* server, uint serverLength, byte* client, uint clientLength);

    // libcrypto
    [LibraryImport(Crypto)] public static partial IntPtr BIO_s_mem();
    [LibraryImport(Crypto)] public static partial IntPtr BIO_new(IntPtr method);
    [LibraryImport(Crypto)] public static partial int BIO_free(IntPtr bio);
    [LibraryImport(Crypto)] public static partial int BIO_read(IntPtr bio, byte* buffer, int length);
    [LibraryImport(Crypto)] public static partial int BIO_write(IntPtr bio, byte* buffer, int length);
    [LibraryImport(Crypto)] public static partial nint BIO_ctrl(IntPtr bio, int cmd, nint larg, IntPtr parg);
    [LibraryImport(Crypto)] public static partial nuint BIO_ctrl_pending(IntPtr bio);
    [LibraryImport(Crypto)] public static partial void ERR_clear_error();
    [LibraryImport(Crypto)] public static partial ulong ERR_get_error();
    [LibraryImport(Crypto)] public static partial void ERR_error_string_n(ulong error, byte* buffer, nuint length);
    [LibraryImport(Crypto)] public static partial int CRYPTO_get_ex_new_index(int classIndex, nint argl, IntPtr argp, IntPtr newFunc, IntPtr dupFunc, IntPtr freeFunc);
    [LibraryImport(Crypto)] public static partial void X509_free(IntPtr x509);
    [LibraryImport(Crypto)] public static partial IntPtr d2i_X509(IntPtr reuse, ref byte* input, nint length);
    [LibraryImport(Crypto)] public static partial int i2d_X509(IntPtr x509, byte** output);
    [LibraryImport(Crypto)] public static partial void EVP_PKEY_free(IntPtr key);
    [LibraryImport(Crypto)] public static partial IntPtr d2i_AutoPrivateKey(IntPtr reuse, ref byte* input, nint length);
    [LibraryImport(Crypto)] public static partial IntPtr OPENSSL_sk_new_null();
    [LibraryImport(Crypto)] public static partial int OPENSSL_sk_push(IntPtr stack, IntPtr item);
    [LibraryImport(Crypto)] public static partial int OPENSSL_sk_num(IntPtr stack);
    [LibraryImport(Crypto)] public static partial IntPtr OPENSSL_sk_value(IntPtr stack, int index);
    [LibraryImport(Crypto)] public static partial void OPENSSL_sk_free(IntPtr stack);
    [LibraryImport(Crypto)] public static partial IntPtr X509_STORE_CTX_get0_cert(IntPtr ctx);
    [LibraryImport(Crypto)] public static partial IntPtr X509_STORE_CTX_get0_untrusted(IntPtr ctx);
    [LibraryImport(Crypto)] public static partial void X509_STORE_CTX_set_error(IntPtr ctx, int error);
    [LibraryImport(Crypto)] public static partial IntPtr X509_STORE_CTX_get_ex_data(IntPtr ctx, int index);
    [LibraryImport(Crypto)] public static partial int RAND_bytes(byte* buffer, int length);
    [LibraryImport(Crypto)] public static partial IntPtr EVP_aes_256_cbc();
    [LibraryImport(Crypto)] public static partial int EVP_EncryptInit_ex(IntPtr ctx, IntPtr cipher, IntPtr engine, byte* key, byte* iv);
    [LibraryImport(Crypto)] public static partial int EVP_DecryptInit_ex(IntPtr ctx, IntPtr cipher, IntPtr engine, byte* key, byte* iv);
    [LibraryImport(Crypto)] public static partial int EVP_MAC_CTX_set_params(IntPtr ctx, OsslParam* parameters);

    /// <summary>True when libssl.so.3 can be loaded (Linux with OpenSSL 3).</summary>
    public static bool IsAvailable { get; } = NativeLibrary.TryLoad(Ssl, out _) && NativeLibrary.TryLoad(Crypto, out _);

    /// <summary>The thread's OpenSSL error queue as text (oldest first), emptied; "" when empty.</summary>
    public static string DrainErrors(out int firstReason)
    {
        firstReason = 0;
        var buffer = stackalloc byte[256];
        string? text = null;
        ulong error;
        while ((error = ERR_get_error()) != 0)
        {
            if (firstReason == 0 && (error & 0x80000000UL) == 0)
            {
                firstReason = (int)(error & 0x7FFFFF);
            }

            ERR_error_string_n(error, buffer, 256);
            var line = Marshal.PtrToStringUTF8((IntPtr)buffer) ?? string.Empty;
            text = text is null ? line : text + "; " + line;
        }

        return text ?? string.Empty;
    }

    public static string? Utf8(IntPtr p) => p == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(p);
}
