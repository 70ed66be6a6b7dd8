using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Legate.Tests.Harness;

/// <summary>
/// A small PKI made for a test: a root CA, an intermediate CA, and leaf certificates issued by
/// either, with the names, key types and validity a test asks for. Everything is written as PEM
/// into a temporary directory (deleted on dispose) so configs can name the files.
/// </summary>
internal sealed class TestCertificates : IDisposable
{
    private int _serial = 1000;

    public TestCertificates(string name = "Legate Test")
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("legate-pki-").FullName;
        Root = CreateCa(name + " Root CA", issuer: null);
        Intermediate = CreateCa(name + " Intermediate CA", Root);
        RootPath = Write("root-ca.pem", Root.Certificate.ExportCertificatePem() + "\n");
        IntermediatePath = Write("intermediate-ca.pem", Intermediate.Certificate.ExportCertificatePem() + "\n");
    }

    public string Directory { get; }

    public Issued Root { get; }

    public Issued Intermediate { get; }

    /// <summary>The root CA's PEM file (what a trusted_ca names).</summary>
    public string RootPath { get; }

    public string IntermediatePath { get; }

    /// <summary>Options for one leaf certificate.</summary>
    internal sealed record LeafOptions
    {
        public string CommonName { get; init; } = "localhost";

        public string[] Dns { get; init; } = [];

        public string[] Uris { get; init; } = [];

        public string[] Emails { get; init; } = [];

        public IPAddress[] Ips { get; init; } = [];

        public bool Ecdsa { get; init; }

        /// <summary>Issued by the intermediate (chain file holds leaf + intermediate) instead of the root.</summary>
        public bool ViaIntermediate { get; init; }

        public DateTimeOffset NotBefore { get; init; } = DateTimeOffset.UtcNow.AddDays(-1);

        public DateTimeOffset NotAfter { get; init; } = DateTimeOffset.UtcNow.AddDays(30);

        public bool Client { get; init; }

        /// <summary>Self-signed instead of issued by this PKI.</summary>
        public bool SelfSigned { get; init; }
    }

    /// <summary>A certificate with its key, its PEM files and its issuer.</summary>
    internal sealed record Issued(X509Certificate2 Certificate, AsymmetricAlgorithm Key, string? ChainPath = null, string? KeyPath = null)
    {
        public string CertificatePem => Certificate.ExportCertificatePem() + "\n";

        public string KeyPem => Key switch
        {
            RSA rsa => rsa.ExportPkcs8PrivateKeyPem() + "\n",
            ECDsa ec => ec.ExportPkcs8PrivateKeyPem() + "\n",
            _ => throw new InvalidOperationException(),
        };

        /// <summary>The certificate with its private key attached (for client certificates in .NET).</summary>
        public X509Certificate2 WithKey() => X509CertificateLoader.LoadPkcs12(
            (Key is RSA rsa ? Certificate.CopyWithPrivateKey(rsa) : Certificate.CopyWithPrivateKey((ECDsa)Key)).Export(X509ContentType.Pkcs12),
            null);

        public string Sha256Hex => Convert.ToHexStringLower(SHA256.HashData(Certificate.RawData));

        public string SpkiBase64 => Convert.ToBase64String(SHA256.HashData(Certificate.PublicKey.ExportSubjectPublicKeyInfo()));

        /// <summary>
        /// Writes an SDS file (a DiscoveryResponse) with one tls_certificate Secret naming this
        /// certificate's files: written beside, then renamed over, the atomic replace Envoy expects.
        /// </summary>
        public void WriteSdsFile(string path, string secretName = "server_cert")
        {
            var temp = path + ".tmp";
            File.WriteAllText(temp, $$"""
                resources:
                - "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
                  name: {{secretName}}
                  tls_certificate:
                    certificate_chain: { filename: "{{ChainPath}}" }
                    private_key: { filename: "{{KeyPath}}" }

                """);
            File.Move(temp, path, overwrite: true);
        }
    }

    /// <summary>Issues a leaf and writes <c>{file}.pem</c> (leaf + chain) and <c>{file}-key.pem</c>.</summary>
    public Issued Leaf(string file, LeafOptions options)
    {
        AsymmetricAlgorithm key = options.Ecdsa ? ECDsa.Create(ECCurve.NamedCurves.nistP256) : RSA.Create(2048);
        var subject = new X500DistinguishedName($"CN={options.CommonName}, O=Legate Tests, C=US");
        var request = key is RSA rsaKey
            ? new CertificateRequest(subject, rsaKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            : new CertificateRequest(subject, (ECDsa)key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        var any = false;
        foreach (var d in options.Dns)
        {
            san.AddDnsName(d);
            any = true;
        }

        foreach (var u in options.Uris)
        {
            san.AddUri(new Uri(u));
            any = true;
        }

        foreach (var e in options.Emails)
        {
            san.AddEmailAddress(e);
            any = true;
        }

        foreach (var ip in options.Ips)
        {
            san.AddIpAddress(ip);
            any = true;
        }

        if (any)
        {
            request.CertificateExtensions.Add(san.Build());
        }

        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            key is RSA ? X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment : X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [options.Client ? new Oid("1.3.6.1.5.5.7.3.2") : new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));

        X509Certificate2 certificate;
        var chain = new StringBuilder();
        if (options.SelfSigned)
        {
            using var selfSigned = request.CreateSelfSigned(options.NotBefore, options.NotAfter);
            certificate = X509CertificateLoader.LoadCertificate(selfSigned.RawData);
        }
        else
        {
            var issuer = options.ViaIntermediate ? Intermediate : Root;
            certificate = request.Create(issuer.Certificate.SubjectName, Signer(issuer.Key), options.NotBefore, options.NotAfter, NextSerial());
            if (options.ViaIntermediate)
            {
                chain.Append(Intermediate.CertificatePem);
            }
        }

        var issued = new Issued(certificate, key);
        var chainPath = Write(file + ".pem", issued.CertificatePem + chain);
        var keyPath = Write(file + "-key.pem", issued.KeyPem);
        return issued with { ChainPath = chainPath, KeyPath = keyPath };
    }

    /// <summary>A CRL from the root CA revoking <paramref name="revoked"/>; returns its PEM path.</summary>
    public string Crl(string file, Issued issuer, params Issued[] revoked)
    {
        var builder = new CertificateRevocationListBuilder();
        foreach (var r in revoked)
        {
            builder.AddEntry(r.Certificate, DateTimeOffset.UtcNow.AddMinutes(-5));
        }

        using var signing = issuer.Key is RSA rsa ? issuer.Certificate.CopyWithPrivateKey(rsa) : issuer.Certificate.CopyWithPrivateKey((ECDsa)issuer.Key);
        var der = builder.Build(signing, 1, DateTimeOffset.UtcNow.AddDays(7), HashAlgorithmName.SHA256, issuer.Key is RSA ? RSASignaturePadding.Pkcs1 : null);
        return Write(file, PemEncoding.WriteString("X509 CRL", der) + "\n");
    }

    /// <summary>Writes <paramref name="content"/> to a file in <see cref="Directory"/>; returns its path.</summary>
    public string Write(string file, string content)
    {
        var path = Path.Combine(Directory, file);
        File.WriteAllText(path, content);
        return path;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static X509SignatureGenerator Signer(AsymmetricAlgorithm key) => key is RSA rsa
        ? X509SignatureGenerator.CreateForRSA(rsa, RSASignaturePadding.Pkcs1)
        : X509SignatureGenerator.CreateForECDsa((ECDsa)key);

    private byte[] NextSerial()
    {
        var serial = BitConverter.GetBytes(Interlocked.Increment(ref _serial));
        Array.Reverse(serial);
        return [0x01, .. serial];
    }

    private Issued CreateCa(string name, Issued? issuer)
    {
        var key = RSA.Create(2048);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={name}, O=Legate Tests"), key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var notBefore = DateTimeOffset.UtcNow.AddDays(-2);
        var notAfter = DateTimeOffset.UtcNow.AddYears(1);
        X509Certificate2 certificate = issuer is null
            ? request.CreateSelfSigned(notBefore, notAfter)
            : request.Create(issuer.Certificate.SubjectName, Signer(issuer.Key), notBefore, notAfter, NextSerial());
        return new Issued(X509CertificateLoader.LoadCertificate(certificate.RawData), key);
    }
}
