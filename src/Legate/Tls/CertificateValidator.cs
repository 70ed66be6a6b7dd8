using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Legate.Config;

namespace Legate.Tls;

/// <summary>
/// A compiled <c>CertificateValidationContext</c>: checks a peer certificate the way Envoy's
/// default validator does, in its order — chain to <c>trusted_ca</c> (with CRLs, expiry unless
/// <c>allow_expired_certificate</c>, <c>ACCEPT_UNTRUSTED</c> accepting failures), then
/// <c>match_typed_subject_alt_names</c> (any matcher), then <c>verify_certificate_hash</c> /
/// <c>verify_certificate_spki</c> (any pin). Immutable; SDS rotation swaps in a new one.
/// </summary>
internal sealed class CertificateValidator
{
    private readonly X509Certificate2Collection _roots;
    private readonly X509Certificate2Collection _intermediates;
    private readonly List<RevocationList> _crls;
    private readonly SanMatcher[] _sanMatchers;
    private readonly byte[][] _hashPins;
    private readonly byte[][] _spkiPins;
    private readonly bool _allowExpired;
    private readonly bool _acceptUntrusted;
    private readonly bool _onlyLeafCrl;
    private readonly uint? _maxDepth;

    private CertificateValidator(
        X509Certificate2Collection roots, X509Certificate2Collection intermediates, List<RevocationList> crls, SanMatcher[] sanMatchers,
        byte[][] hashPins, byte[][] spkiPins, bool allowExpired, bool acceptUntrusted, bool onlyLeafCrl, uint? maxDepth, string caSource)
    {
        _roots = roots;
        _intermediates = intermediates;
        _crls = crls;
        _sanMatchers = sanMatchers;
        _hashPins = hashPins;
        _spkiPins = spkiPins;
        _allowExpired = allowExpired;
        _acceptUntrusted = acceptUntrusted;
        _onlyLeafCrl = onlyLeafCrl;
        _maxDepth = maxDepth;
        CaSource = caSource;
    }

    /// <summary>True when trusted_ca is configured (the chain is verified).</summary>
    public bool HasTrustedCa => _roots.Count > 0;

    /// <summary>True when SAN matchers are configured.</summary>
    public bool HasSanMatchers => _sanMatchers.Length > 0;

    /// <summary>The trusted CA certificates, for /certs.</summary>
    public X509Certificate2Collection TrustedCa => _roots;

    /// <summary>Where trusted_ca came from, for /certs.</summary>
    public string CaSource { get; }

    /// <summary>Compiles <paramref name="proto"/>; null after adding errors.</summary>
    public static CertificateValidator? Compile(CertificateValidationContext proto, string path, ConfigErrors errors)
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

    public static CertificateValidator CompileOrThrow(CertificateValidationContext proto, string path)
    {
        var errors = new ConfigErrors();
        var roots = new X509Certificate2Collection();
        var intermediates = new X509Certificate2Collection();
        if (proto.TrustedCa is { } trustedCa)
        {
            var caPath = FieldPath.Field(path, "trusted_ca");
            var all = new X509Certificate2Collection();
            try
            {
                all.ImportFromPem(System.Text.Encoding.UTF8.GetString(DataSourceReader.ReadOrThrow(trustedCa, caPath)));
            }
            catch (CryptographicException ex)
            {
                errors.Add(caPath, $"cannot read the CA certificates: {ex.Message}");
            }

            if (all.Count == 0 && !errors.HasErrors)
            {
                errors.Add(caPath, $"Failed to load trusted CA certificates from {DataSourceReader.Describe(trustedCa)}");
            }

            foreach (var ca in all)
            {
                // Only self-signed certificates anchor a chain; others in the bundle help build it.
                (ca.SubjectName.RawData.AsSpan().SequenceEqual(ca.IssuerName.RawData) ? roots : intermediates).Add(ca);
            }
        }

        if (proto.SystemRootCerts is not null)
        {
            errors.Add(FieldPath.Field(path, "system_root_certs"), "system_root_certs is not supported yet; list the CAs in trusted_ca");
        }

        if (proto.CustomValidatorConfig is not null)
        {
            errors.Add(FieldPath.Field(path, "custom_validator_config"), "custom certificate validators are not supported");
        }

        var crls = new List<RevocationList>();
        if (proto.Crl is { } crl)
        {
            var crlPath = FieldPath.Field(path, "crl");
            if (roots.Count == 0)
            {
                errors.Add(crlPath, "Failed to load CRL: a crl needs trusted_ca");
            }

            try
            {
                crls = RevocationList.ParseAll(DataSourceReader.ReadOrThrow(crl, crlPath));
            }
            catch (CryptographicException ex)
            {
                errors.Add(crlPath, $"Failed to load CRL from {DataSourceReader.Describe(crl)}: {ex.Message}");
            }
        }

        var matchers = new List<SanMatcher>();
        for (var i = 0; i < proto.MatchTypedSubjectAltNames.Count; i++)
        {
            if (SanMatcher.Create(proto.MatchTypedSubjectAltNames[i], FieldPath.Index(FieldPath.Field(path, "match_typed_subject_alt_names"), i), errors) is { } m)
            {
                matchers.Add(m);
            }
        }

#pragma warning disable CS0612 // deprecated but still honoured by Envoy
        for (var i = 0; i < proto.MatchSubjectAltNames.Count; i++)
        {
            if (SanMatcher.CreateUntyped(proto.MatchSubjectAltNames[i], FieldPath.Index(FieldPath.Field(path, "match_subject_alt_names"), i), errors) is { } m)
            {
                matchers.Add(m);
            }
        }
#pragma warning restore CS0612

        var hashes = new byte[proto.VerifyCertificateHash.Count][];
        for (var i = 0; i < hashes.Length; i++)
        {
            var hex = proto.VerifyCertificateHash[i].Replace(":", string.Empty, StringComparison.Ordinal);
            try
            {
                hashes[i] = hex.Length == 64 ? Convert.FromHexString(hex) : throw new FormatException();
            }
            catch (FormatException)
            {
                errors.Add(FieldPath.Index(FieldPath.Field(path, "verify_certificate_hash"), i), $"Invalid hex-encoded SHA-256 {proto.VerifyCertificateHash[i]}");
            }
        }

        var spkis = new byte[proto.VerifyCertificateSpki.Count][];
        for (var i = 0; i < spkis.Length; i++)
        {
            try
            {
                spkis[i] = Convert.FromBase64String(proto.VerifyCertificateSpki[i]);
                if (spkis[i].Length != 32)
                {
                    throw new FormatException();
                }
            }
            catch (FormatException)
            {
                errors.Add(FieldPath.Index(FieldPath.Field(path, "verify_certificate_spki"), i), $"Invalid base64-encoded SHA-256 {proto.VerifyCertificateSpki[i]}");
            }
        }

        if (errors.HasErrors)
        {
            throw new ConfigException(errors.Errors);
        }

        return new CertificateValidator(
            roots, intermediates, crls, [.. matchers], hashes, spkis, proto.AllowExpiredCertificate,
            proto.TrustChainVerification == CertificateValidationContext.Types.TrustChainVerification.AcceptUntrusted,
            proto.OnlyVerifyLeafCertCrl, proto.MaxVerifyDepth, DataSourceReader.Describe(proto.TrustedCa));
    }

    /// <summary>
    /// Checks <paramref name="certificate"/> (with the intermediates the peer sent in
    /// <paramref name="peerChain"/>). <paramref name="extraSanMatchers"/> come from the upstream's
    /// auto_san_validation. <paramref name="validated"/> is true when the chain was verified (false
    /// under ACCEPT_UNTRUSTED failures or without trusted_ca).
    /// </summary>
    public CertificateValidationResult Validate(X509Certificate2 certificate, X509Chain? peerChain, string? requiredDnsSan, out bool validated, out string? failure)
    {
        validated = false;
        failure = null;
        if (_roots.Count > 0)
        {
            var chainError = VerifyChain(certificate, peerChain);
            if (chainError is null)
            {
                validated = true;
            }
            else if (!_acceptUntrusted)
            {
                failure = chainError;
                return CertificateValidationResult.ChainError;
            }
        }

        var names = _sanMatchers.Length > 0 || requiredDnsSan is not null ? CertificateNames.Read(certificate) : null;
        if (requiredDnsSan is not null)
        {
            // As in Envoy, the host name from auto_san_validation replaces the configured SAN matchers.
            if (!MatchesDns(names!, requiredDnsSan))
            {
                failure = VerifySanListFailure;
                return CertificateValidationResult.SanMismatch;
            }
        }
        else if (_sanMatchers.Length > 0)
        {
            var any = false;
            foreach (var matcher in _sanMatchers)
            {
                if (matcher.Matches(names!))
                {
                    any = true;
                    break;
                }
            }

            if (!any)
            {
                failure = "verify cert failed: SAN matcher";
                return CertificateValidationResult.SanMismatch;
            }
        }

        if (_hashPins.Length > 0 || _spkiPins.Length > 0)
        {
            if (!MatchesPins(certificate))
            {
                failure = "verify cert failed: cert hash and spki";
                return CertificateValidationResult.HashMismatch;
            }

            // A pinned certificate is as good as a verified chain (Envoy marks it validated).
            validated = true;
        }

        return CertificateValidationResult.Accepted;
    }

    /// <summary>Envoy's text when a certificate lacks the host name auto_san_validation asks for.</summary>
    public const string VerifySanListFailure = "verify cert failed: verify SAN list";

    /// <summary>True when a DNS SAN of <paramref name="certificate"/> covers <paramref name="host"/> (wildcards included).</summary>
    public static bool HasDnsName(X509Certificate2 certificate, string host) => MatchesDns(CertificateNames.Read(certificate), host);

    private static bool MatchesDns(CertificateNames names, string host)
    {
        foreach (var dns in names.Dns)
        {
            if (DnsNames.Match(dns, host))
            {
                return true;
            }
        }

        return false;
    }

    private bool MatchesPins(X509Certificate2 certificate)
    {
        if (_hashPins.Length > 0)
        {
            Span<byte> hash = stackalloc byte[32];
            SHA256.HashData(certificate.RawData, hash);
            foreach (var pin in _hashPins)
            {
                if (hash.SequenceEqual(pin))
                {
                    return true;
                }
            }
        }

        if (_spkiPins.Length > 0)
        {
            Span<byte> spki = stackalloc byte[32];
            SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo(), spki);
            foreach (var pin in _spkiPins)
            {
                if (spki.SequenceEqual(pin))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>null when the chain verifies, else OpenSSL-like reason text.</summary>
    private string? VerifyChain(X509Certificate2 certificate, X509Chain? peerChain)
    {
        using var chain = new X509Chain();
        var policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(_roots);
        policy.ExtraStore.AddRange(_intermediates);
        if (peerChain is not null)
        {
            policy.ExtraStore.AddRange(peerChain.ChainPolicy.ExtraStore);
            foreach (var element in peerChain.ChainElements)
            {
                if (!element.Certificate.RawData.AsSpan().SequenceEqual(certificate.RawData))
                {
                    policy.ExtraStore.Add(element.Certificate);
                }
            }
        }

        policy.RevocationMode = X509RevocationMode.NoCheck;
        policy.DisableCertificateDownloads = true;
        if (_allowExpired)
        {
            policy.VerificationFlags |= X509VerificationFlags.IgnoreNotTimeValid | X509VerificationFlags.IgnoreCtlNotTimeValid;
        }

        if (!chain.Build(certificate))
        {
            foreach (var status in chain.ChainStatus)
            {
                if (status.Status != X509ChainStatusFlags.NoError)
                {
                    return "verify cert failed: " + Describe(status.Status);
                }
            }

            return "verify cert failed: certificate verify failed";
        }

        if (_maxDepth is { } depth && chain.ChainElements.Count - 1 > depth + 1)
        {
            return "verify cert failed: certificate chain too long";
        }

        if (_crls.Count > 0)
        {
            // Envoy sets CRL_CHECK (and CRL_CHECK_ALL unless only_verify_leaf_cert_crl): each checked
            // certificate needs a CRL from its issuer, and must not be on it.
            var checkedCount = _onlyLeafCrl ? 1 : chain.ChainElements.Count - 1;
            for (var i = 0; i < checkedCount && i + 1 < chain.ChainElements.Count; i++)
            {
                var subject = chain.ChainElements[i].Certificate;
                var issuer = chain.ChainElements[i + 1].Certificate;
                var found = false;
                foreach (var crl in _crls)
                {
                    if (crl.IsIssuedBy(issuer))
                    {
                        found = true;
                        if (crl.IsRevoked(subject))
                        {
                            return "verify cert failed: certificate revoked";
                        }
                    }
                }

                if (!found)
                {
                    return "verify cert failed: unable to get certificate CRL";
                }
            }
        }

        return null;
    }

    private static string Describe(X509ChainStatusFlags status) => status switch
    {
        X509ChainStatusFlags.NotTimeValid => "certificate has expired",
        X509ChainStatusFlags.UntrustedRoot or X509ChainStatusFlags.PartialChain => "unable to get local issuer certificate",
        X509ChainStatusFlags.NotSignatureValid => "certificate signature failure",
        X509ChainStatusFlags.Revoked => "certificate revoked",
        _ => status.ToString(),
    };
}
