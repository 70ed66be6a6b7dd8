using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Legate.Tls.OpenSsl;

/// <summary>An <c>SSL_CTX</c>, freed once when the last user lets go (connections hold a reference while they run).</summary>
internal sealed class SslContextHandle : SafeHandle
{
    public SslContextHandle(IntPtr ctx)
        : base(IntPtr.Zero, ownsHandle: true) => SetHandle(ctx);

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        OpenSslNative.SSL_CTX_free(handle);
        return true;
    }
}

/// <summary>
/// One connection's <c>SSL</c> (it owns its two memory BIOs) and the <see cref="GCHandle"/> its
/// callbacks find their state by; holds its <see cref="SslContextHandle"/> alive until freed.
/// </summary>
internal sealed class SslHandle : SafeHandle
{
    private readonly SslContextHandle _context;
    private GCHandle _state;

    public SslHandle(SslContextHandle context, IntPtr ssl, GCHandle state)
        : base(IntPtr.Zero, ownsHandle: true)
    {
        var added = false;
        context.DangerousAddRef(ref added);
        _context = context;
        _state = state;
        SetHandle(ssl);
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        // The SSL first: no callback can run after it, so the state handle can go.
        OpenSslNative.SSL_free(handle);
        if (_state.IsAllocated)
        {
            _state.Free();
        }

        _context.DangerousRelease();
        return true;
    }
}

/// <summary>An <c>X509</c> or <c>EVP_PKEY</c> or <c>STACK_OF(X509)</c> (shallow: its certificates are owned elsewhere).</summary>
internal sealed class CryptoHandle : SafeHandle
{
    private readonly Kind _kind;

    public CryptoHandle(IntPtr value, Kind kind)
        : base(IntPtr.Zero, ownsHandle: true)
    {
        _kind = kind;
        SetHandle(value);
    }

    public enum Kind
    {
        X509,
        PrivateKey,
        Stack,
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        switch (_kind)
        {
            case Kind.X509:
                OpenSslNative.X509_free(handle);
                break;
            case Kind.PrivateKey:
                OpenSslNative.EVP_PKEY_free(handle);
                break;
            default:
                OpenSslNative.OPENSSL_sk_free(handle);
                break;
        }

        return true;
    }
}

/// <summary>
/// A <see cref="TlsCertificate"/> as OpenSSL objects (leaf, key, chain), made once per loaded
/// certificate and set on each SSL that picks it (SSL_use_cert_and_key takes its own references,
/// so a rotated certificate's objects can go while its sessions still run).
/// </summary>
internal sealed unsafe class NativeCertificate
{
    private static readonly ConditionalWeakTable<TlsCertificate, NativeCertificate> s_cache = new();
    private readonly CryptoHandle _leaf;
    private readonly CryptoHandle _key;
    private readonly CryptoHandle[] _chain;
    private readonly CryptoHandle _stack;

    private NativeCertificate(CryptoHandle leaf, CryptoHandle key, CryptoHandle[] chain, CryptoHandle stack)
    {
        _leaf = leaf;
        _key = key;
        _chain = chain;
        _stack = stack;
    }

    /// <summary>The native form of <paramref name="certificate"/>; throws <see cref="CryptographicException"/> when its key cannot be exported to OpenSSL.</summary>
    public static NativeCertificate For(TlsCertificate certificate) =>
        s_cache.TryGetValue(certificate, out var native) ? native : s_cache.GetValue(certificate, Create);

    /// <summary>Puts the certificate, key and chain on <paramref name="ssl"/>; false when OpenSSL refused.</summary>
    public bool Apply(IntPtr ssl)
    {
        var ok = OpenSslNative.SSL_use_cert_and_key(ssl, _leaf.DangerousGetHandle(), _key.DangerousGetHandle(), _stack.DangerousGetHandle(), 1) == 1;
        GC.KeepAlive(this);
        GC.KeepAlive(_chain);
        return ok;
    }

    public static CryptoHandle ParseX509(ReadOnlySpan<byte> der)
    {
        fixed (byte* p = der)
        {
            var cursor = p;
            var x509 = OpenSslNative.d2i_X509(IntPtr.Zero, ref cursor, der.Length);
            if (x509 == IntPtr.Zero)
            {
                throw new CryptographicException("OpenSSL cannot read the certificate: " + OpenSslNative.DrainErrors(out _));
            }

            return new CryptoHandle(x509, CryptoHandle.Kind.X509);
        }
    }

    /// <summary>The DER of an <c>X509*</c> OpenSSL owns.</summary>
    public static byte[] ExportX509(IntPtr x509)
    {
        var length = OpenSslNative.i2d_X509(x509, null);
        if (length <= 0)
        {
            throw new CryptographicException("OpenSSL cannot encode the certificate");
        }

        var der = new byte[length];
        fixed (byte* p = der)
        {
            var cursor = p;
            OpenSslNative.i2d_X509(x509, &cursor);
        }

        return der;
    }

    private static NativeCertificate Create(TlsCertificate certificate)
    {
        byte[] pkcs8;
        using (var rsa = certificate.Leaf.GetRSAPrivateKey())
        using (var ecdsa = rsa is null ? certificate.Leaf.GetECDsaPrivateKey() : null)
        {
            AsymmetricAlgorithm key = (AsymmetricAlgorithm?)rsa ?? ecdsa ?? throw new CryptographicException($"the private key of {certificate.Source} is neither RSA nor ECDSA");
            pkcs8 = key.ExportPkcs8PrivateKey();
        }

        CryptoHandle privateKey;
        fixed (byte* p = pkcs8)
        {
            var cursor = p;
            var pkey = OpenSslNative.d2i_AutoPrivateKey(IntPtr.Zero, ref cursor, pkcs8.Length);
            CryptographicOperations.ZeroMemory(pkcs8);
            if (pkey == IntPtr.Zero)
            {
                throw new CryptographicException("OpenSSL cannot read the private key: " + OpenSslNative.DrainErrors(out _));
            }

            privateKey = new CryptoHandle(pkey, CryptoHandle.Kind.PrivateKey);
        }

        var leaf = ParseX509(certificate.Leaf.RawData);
        var chain = new CryptoHandle[certificate.Chain.Count];
        var stack = new CryptoHandle(OpenSslNative.OPENSSL_sk_new_null(), CryptoHandle.Kind.Stack);
        for (var i = 0; i < chain.Length; i++)
        {
            chain[i] = ParseX509(certificate.Chain[i].RawData);
            OpenSslNative.OPENSSL_sk_push(stack.DangerousGetHandle(), chain[i].DangerousGetHandle());
        }

        return new NativeCertificate(leaf, privateKey, chain, stack);
    }

    /// <summary>An <c>X509*</c> OpenSSL owns, as a .NET certificate.</summary>
    public static X509Certificate2 Load(IntPtr x509) => X509CertificateLoader.LoadCertificate(ExportX509(x509));
}
