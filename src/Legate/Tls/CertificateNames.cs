using System.Formats.Asn1;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Legate.Tls;

/// <summary>
/// The names in a certificate as Envoy reports and matches them: subject alternative names by type
/// (read from the extension's DER, since .NET only decodes DNS and IP names) and the subject in
/// OpenSSL's RFC 2253 form (<c>CN=Test Client,OU=Lyft,L=San Francisco,ST=CA,C=US</c>).
/// </summary>
internal sealed class CertificateNames
{
    private const string SubjectAltNameOid = "2.5.29.17";

    private static readonly Dictionary<string, string> s_shortNames = new(StringComparer.Ordinal)
    {
        ["2.5.4.3"] = "CN",
        ["2.5.4.6"] = "C",
        ["2.5.4.7"] = "L",
        ["2.5.4.8"] = "ST",
        ["2.5.4.9"] = "street",
        ["2.5.4.10"] = "O",
        ["2.5.4.11"] = "OU",
        ["2.5.4.5"] = "serialNumber",
        ["2.5.4.4"] = "SN",
        ["2.5.4.42"] = "GN",
        ["2.5.4.12"] = "title",
        ["0.9.2342.19200300.100.1.25"] = "DC",
        ["0.9.2342.19200300.100.1.1"] = "UID",
        ["1.2.840.113549.1.9.1"] = "emailAddress",
    };

    private CertificateNames(string[] dns, string[] uri, string[] email, string[] ip, string subject, string issuer)
    {
        Dns = dns;
        Uri = uri;
        Email = email;
        IpAddress = ip;
        Subject = subject;
        Issuer = issuer;
    }

    public string[] Dns { get; }

    public string[] Uri { get; }

    public string[] Email { get; }

    /// <summary>IP address SANs in their usual text form (<c>127.0.0.1</c>, <c>::1</c>).</summary>
    public string[] IpAddress { get; }

    /// <summary>The subject in RFC 2253 form.</summary>
    public string Subject { get; }

    /// <summary>The issuer in RFC 2253 form.</summary>
    public string Issuer { get; }

    /// <summary>The subject's common name, or null.</summary>
    public string? CommonName { get; private init; }

    public static CertificateNames Read(X509Certificate2 certificate)
    {
        List<string> dns = [], uri = [], email = [], ip = [];
        foreach (var extension in certificate.Extensions)
        {
            if (extension.Oid?.Value == SubjectAltNameOid)
            {
                ReadSubjectAltNames(extension.RawData, dns, uri, email, ip);
            }
        }

        return new CertificateNames([.. dns], [.. uri], [.. email], [.. ip], Format(certificate.SubjectName), Format(certificate.IssuerName))
        {
            CommonName = certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false) is { Length: > 0 } cn ? cn : null,
        };
    }

    /// <summary>Every SAN of <paramref name="certificate"/> with its type name, for /certs.</summary>
    public IEnumerable<(string Type, string Value)> All()
    {
        foreach (var v in Dns)
        {
            yield return ("dns", v);
        }

        foreach (var v in Uri)
        {
            yield return ("uri", v);
        }

        foreach (var v in Email)
        {
            yield return ("email", v);
        }

        foreach (var v in IpAddress)
        {
            yield return ("ip_address", v);
        }
    }

    /// <summary>A distinguished name as OpenSSL prints it with XN_FLAG_RFC2253: last RDN first, comma-separated.</summary>
    public static string Format(X500DistinguishedName name)
    {
        var rdns = new List<string>();
        foreach (var rdn in name.EnumerateRelativeDistinguishedNames())
        {
            var oid = rdn.GetSingleElementType().Value ?? string.Empty;
            var key = s_shortNames.TryGetValue(oid, out var shortName) ? shortName : oid;
            rdns.Add(key + "=" + Escape(rdn.GetSingleElementValue() ?? string.Empty));
        }

        rdns.Reverse();
        return string.Join(',', rdns);
    }

    private static string Escape(string value)
    {
        if (value.Length == 0)
        {
            return value;
        }

        var sb = new StringBuilder(value.Length + 4);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            var special = c is ',' or '+' or '"' or '\\' or '<' or '>' or ';'
                || (i == 0 && (c == '#' || c == ' '))
                || (i == value.Length - 1 && c == ' ');
            if (special)
            {
                sb.Append('\\');
            }

            sb.Append(c);
        }

        return sb.ToString();
    }

    private static void ReadSubjectAltNames(byte[] der, List<string> dns, List<string> uri, List<string> email, List<string> ip)
    {
        try
        {
            var reader = new AsnReader(der, AsnEncodingRules.DER);
            var names = reader.ReadSequence();
            while (names.HasData)
            {
                var tag = names.PeekTag();
                if (tag.TagClass != TagClass.ContextSpecific)
                {
                    names.ReadEncodedValue();
                    continue;
                }

                switch (tag.TagValue)
                {
                    case 1:
                        email.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, tag));
                        break;
                    case 2:
                        dns.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, tag));
                        break;
                    case 6:
                        uri.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, tag));
                        break;
                    case 7:
                        var bytes = names.ReadOctetString(tag);
                        ip.Add(bytes.Length is 4 or 16 ? new IPAddress(bytes).ToString() : Convert.ToHexString(bytes));
                        break;
                    default:
                        names.ReadEncodedValue();
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is AsnContentException or CryptographicException)
        {
            // A malformed extension contributes no names; chain validation judges the certificate.
        }
    }
}
