using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Legate.Tls;

/// <summary>
/// The TLS facts of one connection once the handshake is done (Envoy's Ssl::ConnectionInfo): the
/// version, cipher, ALPN, SNI, the peer certificate (and whether it was validated) and the local
/// certificate. Later consumers (x-forwarded-client-cert, access log operators such as
/// <c>%DOWNSTREAM_PEER_URI_SAN%</c>, RBAC principals, route <c>tls_context</c> matching) read it
/// from the connection; the derived strings are computed on first use.
/// </summary>
internal sealed class TlsSessionInfo
{
    private CertificateNames? _peerNames;
    private CertificateNames? _localNames;
    private string? _peerHash;
    private string? _peerPem;
    private string? _peerChainPem;

    public TlsSessionInfo(SslStream stream, string serverName, bool peerValidated, X509Certificate2Collection? peerChain)
    {
        Version = TlsParameters.VersionName(stream.SslProtocol);
        Cipher = CipherSuiteNames.NameOf(stream.NegotiatedCipherSuite);
        ApplicationProtocol = stream.NegotiatedApplicationProtocol.Protocol.Length > 0 ? stream.NegotiatedApplicationProtocol.ToString() : string.Empty;
        ServerName = serverName;
        PeerCertificate = stream.RemoteCertificate as X509Certificate2 ?? (stream.RemoteCertificate is { } c ? X509CertificateLoader.LoadCertificate(c.GetRawCertData()) : null);
        LocalCertificate = stream.LocalCertificate as X509Certificate2 ?? (stream.LocalCertificate is { } l ? X509CertificateLoader.LoadCertificate(l.GetRawCertData()) : null);
        PeerCertificateValidated = peerValidated;
        PeerChain = peerChain;
    }

    /// <summary>A session negotiated by the OpenSSL engine, whose facts come as OpenSSL names.</summary>
    public TlsSessionInfo(
        string version, string cipher, string applicationProtocol, string serverName, X509Certificate2? peer, X509Certificate2? local,
        bool peerValidated, X509Certificate2Collection? peerChain)
    {
        Version = version;
        Cipher = cipher;
        ApplicationProtocol = applicationProtocol;
        ServerName = serverName;
        PeerCertificate = peer;
        LocalCertificate = local;
        PeerCertificateValidated = peerValidated;
        PeerChain = peerChain;
    }

    /// <summary><c>TLSv1.2</c>, <c>TLSv1.3</c>.</summary>
    public string Version { get; }

    /// <summary>The ClientHello's JA3 hash when tls_inspector computed one (downstream sessions), else null.</summary>
    public string? Ja3Hash { get; set; }

    /// <summary>The handshake resumed a session (<see cref="ResumptionDetector"/>), as Envoy's <c>ssl.session_reused</c>.</summary>
    public bool SessionReused { get; init; }

    /// <summary>The OpenSSL name of the cipher (<c>ECDHE-RSA-AES128-GCM-SHA256</c>, <c>TLS_AES_128_GCM_SHA256</c>).</summary>
    public string Cipher { get; }

    /// <summary>The negotiated ALPN protocol, or "".</summary>
    public string ApplicationProtocol { get; }

    /// <summary>The SNI the client asked for (downstream) or sent (upstream), or "".</summary>
    public string ServerName { get; }

    public X509Certificate2? PeerCertificate { get; }

    /// <summary>The intermediates the peer sent after its certificate, when known.</summary>
    public X509Certificate2Collection? PeerChain { get; }

    public X509Certificate2? LocalCertificate { get; }

    public bool PeerCertificatePresented => PeerCertificate is not null;

    /// <summary>True when the peer's certificate chain was verified against a trusted CA (or pinned).</summary>
    public bool PeerCertificateValidated { get; }

    public CertificateNames? PeerNames => PeerCertificate is null ? null : _peerNames ??= CertificateNames.Read(PeerCertificate);

    public CertificateNames? LocalNames => LocalCertificate is null ? null : _localNames ??= CertificateNames.Read(LocalCertificate);

    /// <summary>Hex SHA-256 of the peer certificate (lower case), or "".</summary>
    public string PeerCertificateSha256 => PeerCertificate is null
        ? string.Empty
        : _peerHash ??= Convert.ToHexStringLower(SHA256.HashData(PeerCertificate.RawData));

    /// <summary>The peer certificate in PEM, or "".</summary>
    public string PeerCertificatePem => PeerCertificate is null ? string.Empty : _peerPem ??= PeerCertificate.ExportCertificatePem() + "\n";

    /// <summary>The peer certificate followed by its chain, in PEM.</summary>
    public string PeerChainPem
    {
        get
        {
            if (PeerCertificate is null)
            {
                return string.Empty;
            }

            if (_peerChainPem is null)
            {
                var sb = new StringBuilder(PeerCertificatePem);
                if (PeerChain is not null)
                {
                    foreach (var cert in PeerChain)
                    {
                        sb.Append(cert.ExportCertificatePem()).Append('\n');
                    }
                }

                _peerChainPem = sb.ToString();
            }

            return _peerChainPem;
        }
    }

    /// <summary>The peer's serial number in hex (lower case), or "".</summary>
    public string PeerSerial => PeerCertificate?.SerialNumber.ToLowerInvariant() ?? string.Empty;
}
