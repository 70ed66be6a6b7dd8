using System.Formats.Asn1;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Legate.Tls;

/// <summary>
/// One X.509 CRL, read far enough to check certificates against it: its issuer, its signature
/// (verified against the issuing CA before the list is believed) and the revoked serial numbers.
/// .NET cannot hand a CRL to a chain build on Linux, so Legate checks revocation itself after the
/// chain is built, as OpenSSL does with the CRL_CHECK flags Envoy sets.
/// </summary>
internal sealed class RevocationList
{
    private readonly HashSet<BigInteger> _revoked;
    private readonly byte[] _tbs;
    private readonly byte[] _signature;
    private readonly string _signatureAlgorithm;

    private RevocationList(X500DistinguishedName issuer, HashSet<BigInteger> revoked, byte[] tbs, byte[] signature, string signatureAlgorithm)
    {
        Issuer = issuer;
        _revoked = revoked;
        _tbs = tbs;
        _signature = signature;
        _signatureAlgorithm = signatureAlgorithm;
    }

    public X500DistinguishedName Issuer { get; }

    /// <summary>Every CRL in <paramref name="data"/> (PEM blocks, or one DER CRL).</summary>
    /// <exception cref="CryptographicException">The data holds no readable CRL.</exception>
    public static List<RevocationList> ParseAll(byte[] data)
    {
        var lists = new List<RevocationList>();
        var text = Encoding.ASCII.GetString(data);
        if (text.Contains("-----BEGIN X509 CRL-----", StringComparison.Ordinal))
        {
            var rest = text.AsSpan();
            while (PemEncoding.TryFind(rest, out var fields))
            {
                if (rest[fields.Label].SequenceEqual("X509 CRL"))
                {
                    lists.Add(Parse(Convert.FromBase64String(rest[fields.Base64Data].ToString())));
                }

                rest = rest[fields.Location.End..];
            }
        }
        else
        {
            lists.Add(Parse(data));
        }

        return lists.Count > 0 ? lists : throw new CryptographicException("no CRL found");
    }

    private static RevocationList Parse(byte[] der)
    {
        try
        {
            var outer = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
            var tbsBytes = outer.PeekEncodedValue().ToArray();
            var tbs = outer.ReadSequence();
            var algorithm = outer.ReadSequence().ReadObjectIdentifier();
            var signature = outer.ReadBitString(out _);

            if (tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Integer))
            {
                tbs.ReadInteger(); // version
            }

            tbs.ReadSequence(); // signature algorithm (repeated)
            var issuer = new X500DistinguishedName(tbs.ReadEncodedValue().Span);
            tbs.ReadEncodedValue(); // thisUpdate
            if (tbs.HasData && (tbs.PeekTag().HasSameClassAndValue(Asn1Tag.UtcTime) || tbs.PeekTag().HasSameClassAndValue(Asn1Tag.GeneralizedTime)))
            {
                tbs.ReadEncodedValue(); // nextUpdate
            }

            var revoked = new HashSet<BigInteger>();
            if (tbs.HasData && tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Sequence))
            {
                var entries = tbs.ReadSequence();
                while (entries.HasData)
                {
                    var entry = entries.ReadSequence();
                    revoked.Add(entry.ReadInteger());
                }
            }

            return new RevocationList(issuer, revoked, tbsBytes, signature, algorithm);
        }
        catch (AsnContentException ex)
        {
            throw new CryptographicException("malformed CRL: " + ex.Message, ex);
        }
    }

    /// <summary>True when this list was issued (and signed) by <paramref name="issuer"/>.</summary>
    public bool IsIssuedBy(X509Certificate2 issuer)
    {
        if (!issuer.SubjectName.RawData.AsSpan().SequenceEqual(Issuer.RawData))
        {
            return false;
        }

        var hash = _signatureAlgorithm switch
        {
            "1.2.840.113549.1.1.11" or "1.2.840.10045.4.3.2" => HashAlgorithmName.SHA256,
            "1.2.840.113549.1.1.12" or "1.2.840.10045.4.3.3" => HashAlgorithmName.SHA384,
            "1.2.840.113549.1.1.13" or "1.2.840.10045.4.3.4" => HashAlgorithmName.SHA512,
            "1.2.840.113549.1.1.5" or "1.2.840.10045.4.1" => HashAlgorithmName.SHA1,
            _ => default,
        };
        if (hash.Name is null)
        {
            return false;
        }

        using var rsa = issuer.GetRSAPublicKey();
        if (rsa is not null)
        {
            return rsa.VerifyData(_tbs, _signature, hash, RSASignaturePadding.Pkcs1);
        }

        using var ecdsa = issuer.GetECDsaPublicKey();
        return ecdsa is not null && ecdsa.VerifyData(_tbs, _signature, hash, DSASignatureFormat.Rfc3279DerSequence);
    }

    public bool IsRevoked(X509Certificate2 certificate) =>
        _revoked.Contains(new BigInteger(certificate.SerialNumberBytes.Span, isUnsigned: false, isBigEndian: true));
}
