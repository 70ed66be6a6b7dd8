using System.Security.Cryptography;
using System.Text;
using Legate.Tls;

namespace Legate.Http.Formatter;

/// <summary>
/// The TLS operators of Envoy's substitution formatter, downstream (the client's connection) and
/// upstream (the connection the router used): peer and local SANs, subject, issuer, version,
/// cipher, fingerprints, serial, the peer certificate (URL-encoded PEM) and its validity times. A
/// plaintext connection has none of them (<c>-</c>).
/// </summary>
internal sealed partial class CommandOperator
{
    private delegate TlsSessionInfo? SessionFunc(in FormatterContext context);

    /// <summary>True when <paramref name="name"/> is a TLS operator that takes a time format (<c>%DOWNSTREAM_PEER_CERT_V_START(%s)%</c>).</summary>
    private static bool TakesTimeFormat(string name) => name.EndsWith("_PEER_CERT_V_START", StringComparison.Ordinal) || name.EndsWith("_PEER_CERT_V_END", StringComparison.Ordinal);

    /// <summary>Builds <c>DOWNSTREAM_*</c> / <c>UPSTREAM_*</c> TLS operators; null with no problem when <paramref name="name"/> is not one.</summary>
    private static CommandOperator? TlsOperator(string name, string? argument, out string problem)
    {
        problem = string.Empty;
        SessionFunc session;
        string rest;
        if (name.StartsWith("DOWNSTREAM_", StringComparison.Ordinal))
        {
            session = static (in FormatterContext c) => c.Info.DownstreamTls;
            rest = name["DOWNSTREAM_".Length..];
        }
        else if (name.StartsWith("UPSTREAM_", StringComparison.Ordinal))
        {
            session = static (in FormatterContext c) => c.Info.UpstreamTls;
            rest = name["UPSTREAM_".Length..];
        }
        else
        {
            return null;
        }

        switch (rest)
        {
            case "PEER_URI_SAN":
                return TlsString(name, session, static s => Join(s.PeerNames?.Uri));
            case "LOCAL_URI_SAN":
                return TlsString(name, session, static s => Join(s.LocalNames?.Uri));
            case "PEER_DNS_SAN":
                return TlsString(name, session, static s => Join(s.PeerNames?.Dns));
            case "LOCAL_DNS_SAN":
                return TlsString(name, session, static s => Join(s.LocalNames?.Dns));
            case "PEER_IP_SAN":
                return TlsString(name, session, static s => Join(s.PeerNames?.IpAddress));
            case "LOCAL_IP_SAN":
                return TlsString(name, session, static s => Join(s.LocalNames?.IpAddress));
            case "PEER_EMAIL_SAN":
                return TlsString(name, session, static s => Join(s.PeerNames?.Email));
            case "LOCAL_EMAIL_SAN":
                return TlsString(name, session, static s => Join(s.LocalNames?.Email));
            case "PEER_SUBJECT":
                return TlsString(name, session, static s => s.PeerNames?.Subject);
            case "LOCAL_SUBJECT":
                return TlsString(name, session, static s => s.LocalNames?.Subject);
            case "PEER_ISSUER":
                return TlsString(name, session, static s => s.PeerNames?.Issuer);
            case "TLS_VERSION":
                return TlsString(name, session, static s => s.Version);
            case "TLS_CIPHER":
                return TlsString(name, session, static s => s.Cipher);
            case "PEER_FINGERPRINT_256":
                return TlsString(name, session, static s => s.PeerCertificateSha256);
            case "PEER_FINGERPRINT_1":
                return TlsString(name, session, static s => s.PeerCertificate is { } c ? Convert.ToHexStringLower(SHA1.HashData(c.RawData)) : null);
            case "PEER_SERIAL":
                return TlsString(name, session, static s => s.PeerSerial);
            case "PEER_CERT":
                return TlsString(name, session, static s => s.PeerCertificatePresented ? Uri.EscapeDataString(s.PeerCertificatePem) : null);
            case "PEER_CERT_V_START":
                return TlsTime(name, session, argument, static s => s.PeerCertificate?.NotBefore);
            case "PEER_CERT_V_END":
                return TlsTime(name, session, argument, static s => s.PeerCertificate?.NotAfter);
            case "TLS_SESSION_ID":
                problem = "is not supported: .NET's SslStream does not expose the TLS session id";
                return null;
            case "PEER_CHAIN_FINGERPRINTS_256" or "PEER_CHAIN_FINGERPRINTS_1" or "PEER_CHAIN_SERIALS":
                problem = "command operator not supported yet";
                return null;
            default:
                return null;
        }
    }

    private static CommandOperator TlsString(string name, SessionFunc session, Func<TlsSessionInfo, string?> value) =>
        new(name, (in FormatterContext c, StringBuilder o) =>
        {
            if (session(c) is not { } tls || value(tls) is not { Length: > 0 } text)
            {
                return false;
            }

            o.Append(text);
            return true;
        });

    private static CommandOperator TlsTime(string name, SessionFunc session, string? argument, Func<TlsSessionInfo, DateTime?> value)
    {
        // Envoy formats certificate validity times like START_TIME (the same default and strftime argument).
        var format = string.IsNullOrEmpty(argument) ? StartTimeFormat.Default : StartTimeFormat.Parse(argument);
        return new(name, (in FormatterContext c, StringBuilder o) =>
        {
            if (session(c) is not { } tls || value(tls) is not { } time)
            {
                return false;
            }

            format.Append(o, new DateTimeOffset(time.ToUniversalTime(), TimeSpan.Zero));
            return true;
        });
    }

    private static string? Join(string[]? values) => values is null || values.Length == 0 ? null : string.Join(',', values);
}
