using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Legate.Config;
using Proto = Envoy.Extensions.TransportSockets.Tls.V3.TlsCertificate;

namespace Legate.Tls;

/// <summary>
/// One loaded <c>TlsCertificate</c>: the leaf with its private key, the chain sent with it, and
/// what SNI and key-type selection need (its DNS names, its key type). Immutable; a rotated
/// secret produces a new instance.
/// </summary>
internal sealed class TlsCertificate
{
    private TlsCertificate(X509Certificate2 leaf, X509Certificate2Collection chain, string source)
    {
        Leaf = leaf;
        Chain = chain;
        Source = source;
        Names = CertificateNames.Read(leaf);
        KeyType = leaf.GetKeyAlgorithm() switch
        {
            "1.2.840.113549.1.1.1" => CertificateKeyType.Rsa,
            "1.2.840.10045.2.1" => CertificateKeyType.Ecdsa,
            _ => CertificateKeyType.Other,
        };

        // Envoy matches SNI against the DNS SANs, or the common name when there are none.
        ServerNames = Names.Dns.Length > 0 ? Names.Dns : Names.CommonName is { } cn ? [cn] : [];
        Context = SslStreamCertificateContext.Create(leaf, chain, offline: true);
    }

    /// <summary>The end-entity certificate, with its private key.</summary>
    public X509Certificate2 Leaf { get; }

    /// <summary>The certificates after the leaf in certificate_chain (intermediates), in file order.</summary>
    public X509Certificate2Collection Chain { get; }

    /// <summary>Where the chain came from (file name or "&lt;inline&gt;"), for /certs.</summary>
    public string Source { get; }

    public CertificateNames Names { get; }

    public CertificateKeyType KeyType { get; }

    /// <summary>The names SNI is matched against (may start with <c>*.</c>).</summary>
    public string[] ServerNames { get; }

    /// <summary>What SslStream sends: the leaf and its chain, built once.</summary>
    public SslStreamCertificateContext Context { get; }

    /// <summary>Loads <paramref name="proto"/>; null after adding errors under <paramref name="path"/>.</summary>
    public static TlsCertificate? Load(Proto proto, string path, ConfigErrors errors)
    {
        try
        {
            return LoadOrThrow(proto, path);
        }
        catch (ConfigException ex)
        {
            errors.AddFrom(ex);

            return null;
        }
    }

    /// <summary>Loads <paramref name="proto"/>; throws <see cref="ConfigException"/> with the field path on failure.</summary>
    public static TlsCertificate LoadOrThrow(Proto proto, string path)
    {
        if (proto.PrivateKeyProvider is not null)
        {
            throw new ConfigException(FieldPath.Field(path, "private_key_provider"), "private key providers are not supported");
        }

        if (proto.Pkcs12 is { } pkcs12)
        {
            var bytes = DataSourceReader.ReadOrThrow(pkcs12, FieldPath.Field(path, "pkcs12"));
            var password = proto.Password is { } p ? Encoding.UTF8.GetString(DataSourceReader.ReadOrThrow(p, FieldPath.Field(path, "password"))) : null;
            try
            {
                var all = X509CertificateLoader.LoadPkcs12Collection(bytes, password);
                var leafIndex = -1;
                for (var i = 0; i < all.Count; i++)
                {
                    if (all[i].HasPrivateKey)
                    {
                        leafIndex = i;
                        break;
                    }
                }

                if (leafIndex < 0)
                {
                    throw new ConfigException(FieldPath.Field(path, "pkcs12"), "the PKCS#12 file holds no private key");
                }

                var chain = new X509Certificate2Collection();
                for (var i = 0; i < all.Count; i++)
                {
                    if (i != leafIndex)
                    {
                        chain.Add(all[i]);
                    }
                }

                return new TlsCertificate(all[leafIndex], chain, DataSourceReader.Describe(pkcs12));
            }
            catch (CryptographicException ex)
            {
                throw new ConfigException(FieldPath.Field(path, "pkcs12"), $"cannot load the PKCS#12 data: {ex.Message}");
            }
        }

        if (proto.CertificateChain is null)
        {
            throw new ConfigException(FieldPath.Field(path, "certificate_chain"), "a TLS certificate needs certificate_chain (or pkcs12)");
        }

        if (proto.PrivateKey is null)
        {
            throw new ConfigException(FieldPath.Field(path, "private_key"), "a TLS certificate needs private_key");
        }

        var chainPath = FieldPath.Field(path, "certificate_chain");
        var chainPem = Encoding.UTF8.GetString(DataSourceReader.ReadOrThrow(proto.CertificateChain, chainPath));
        var keyPem = Encoding.UTF8.GetString(DataSourceReader.ReadOrThrow(proto.PrivateKey, FieldPath.Field(path, "private_key")));
        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPem(chainPem);
        }
        catch (CryptographicException ex)
        {
            throw new ConfigException(chainPath, $"cannot read the certificate chain: {ex.Message}");
        }

        if (certificates.Count == 0)
        {
            throw new ConfigException(chainPath, $"no certificate found in {DataSourceReader.Describe(proto.CertificateChain)}");
        }

        X509Certificate2 leaf;
        try
        {
            using var plain = certificates[0];
            leaf = proto.Password is { } password
                ? X509Certificate2.CreateFromEncryptedPem(plain.ExportCertificatePem(), keyPem, Encoding.UTF8.GetString(DataSourceReader.ReadOrThrow(password, FieldPath.Field(path, "password"))))
                : X509Certificate2.CreateFromPem(plain.ExportCertificatePem(), keyPem);
        }
        catch (ArgumentException ex)
        {
            // .NET checks that the key belongs to the certificate (ArgumentException when it does not).
            throw new ConfigException(FieldPath.Field(path, "private_key"), $"the private key does not match the certificate of {DataSourceReader.Describe(proto.CertificateChain)}: {ex.Message}");
        }
        catch (CryptographicException ex)
        {
            throw new ConfigException(FieldPath.Field(path, "private_key"), $"cannot load the private key for {DataSourceReader.Describe(proto.CertificateChain)}: {ex.Message}");
        }

        var intermediates = new X509Certificate2Collection();
        for (var i = 1; i < certificates.Count; i++)
        {
            intermediates.Add(certificates[i]);
        }

        return new TlsCertificate(leaf, intermediates, DataSourceReader.Describe(proto.CertificateChain));
    }

    /// <summary>True when <paramref name="serverName"/> equals one of <see cref="ServerNames"/> (no wildcards).</summary>
    public bool MatchesExactly(string serverName)
    {
        foreach (var name in ServerNames)
        {
            if (string.Equals(name, serverName, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when a <c>*.suffix</c> name of this certificate covers <paramref name="serverName"/> (one label).</summary>
    public bool MatchesWildcard(string serverName)
    {
        foreach (var name in ServerNames)
        {
            if (DnsNames.WildcardMatch(name, serverName))
            {
                return true;
            }
        }

        return false;
    }
}
