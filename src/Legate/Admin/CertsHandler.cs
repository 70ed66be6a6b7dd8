using System.Security.Cryptography.X509Certificates;
using Envoy.Admin.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Server;
using Legate.Tls;
using Microsoft.AspNetCore.Http;

namespace Legate.Admin;

/// <summary>
/// <c>/certs</c>: Envoy's <c>envoy.admin.v3.Certificates</c>, one entry per TLS context (listener
/// filter chains and clusters) with its <c>ca_cert</c> (the first trusted CA) and <c>cert_chain</c>
/// (each certificate's leaf): path, serial number, SANs, days until expiration, validity. What is
/// shown is what new handshakes use, so an SDS rotation shows at once.
/// </summary>
internal sealed class CertsHandler(IServerInstance server)
{
    public const string HelpText = "print certs on machine";

    public ValueTask<AdminResponse> HandleAsync(HttpContext context)
    {
        var now = server.Time.GetUtcNow();
        var proto = new Certificates();
        foreach (var tlsContext in server.Secrets?.CertificatesInUse() ?? [])
        {
            var entry = new Certificate();
            foreach (var item in tlsContext)
            {
                if (item.Certificate is { } certificate)
                {
                    entry.CertChain.Add(Details(certificate.Leaf, certificate.Source, now));
                }

                if (item.Validator is { TrustedCa.Count: > 0 } validator)
                {
                    entry.CaCert.Add(Details(validator.TrustedCa[0], validator.CaSource, now));
                }
            }

            proto.Certificates_.Add(entry);
        }

        // With defaults, as Envoy prints empty lists ("certificates": [], "ca_cert": []).
        return ValueTask.FromResult(AdminResponse.Json(ProtoJson.FormatWithDefaults(proto)));
    }

    /// <summary>Whole days until <paramref name="certificate"/> expires, 0 once it has (Envoy's rounding down).</summary>
    public static ulong DaysUntilExpiration(X509Certificate2 certificate, DateTimeOffset now)
    {
        var left = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero) - now;
        return left <= TimeSpan.Zero ? 0 : (ulong)Math.Floor(left.TotalDays);
    }

    private static CertificateDetails Details(X509Certificate2 certificate, string path, DateTimeOffset now)
    {
        var details = new CertificateDetails
        {
            Path = path,
            SerialNumber = certificate.SerialNumber.ToLowerInvariant(),
            DaysUntilExpiration = DaysUntilExpiration(certificate, now),
            ValidFrom = Timestamp.FromDateTime(certificate.NotBefore.ToUniversalTime()),
            ExpirationTime = Timestamp.FromDateTime(certificate.NotAfter.ToUniversalTime()),
        };

        // Envoy lists DNS, URI and IP SANs (the proto has no e-mail kind).
        var names = CertificateNames.Read(certificate);
        foreach (var dns in names.Dns)
        {
            details.SubjectAltNames.Add(new SubjectAlternateName { Dns = dns });
        }

        foreach (var uri in names.Uri)
        {
            details.SubjectAltNames.Add(new SubjectAlternateName { Uri = uri });
        }

        foreach (var ip in names.IpAddress)
        {
            details.SubjectAltNames.Add(new SubjectAlternateName { IpAddress = ip });
        }

        return details;
    }
}
