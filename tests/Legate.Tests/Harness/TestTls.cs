using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Legate.Tests.Harness;

/// <summary>TLS clients for tests: raw <see cref="SslStream"/> connections and HttpClients that trust a <see cref="TestCertificates"/> root.</summary>
internal static class TestTls
{
    /// <summary>What one raw TLS request saw.</summary>
    internal sealed record Outcome(bool Handshake, int Status, string Response, X509Certificate2? ServerCertificate, SslProtocols Protocol, string Alpn, TlsCipherSuite Cipher, string? Error);

    /// <summary>Options of a raw TLS client.</summary>
    internal sealed record ClientOptions
    {
        public string? Sni { get; init; } = "localhost";

        public string[] Alpn { get; init; } = [];

        public X509Certificate2? ClientCertificate { get; init; }

        /// <summary>Intermediates sent after <see cref="ClientCertificate"/>.</summary>
        public X509Certificate2[] ClientIntermediates { get; init; } = [];

        public SslProtocols Protocols { get; init; } = SslProtocols.None;

        /// <summary>Trust only this root; null accepts any server certificate.</summary>
        public X509Certificate2? TrustedRoot { get; init; }
    }

    /// <summary>Connects, handshakes and returns the stream (the caller disposes it).</summary>
    public static async Task<SslStream> ConnectAsync(IPEndPoint endpoint, ClientOptions options, CancellationToken cancellationToken = default)
    {
        var client = new TcpClient();
        await client.ConnectAsync(endpoint, cancellationToken);
        var ssl = new SslStream(client.GetStream(), leaveInnerStreamOpen: false);
        var auth = new SslClientAuthenticationOptions
        {
            TargetHost = options.Sni ?? string.Empty,
            EnabledSslProtocols = options.Protocols,
            ApplicationProtocols = options.Alpn.Length == 0 ? null : options.Alpn.Select(a => new SslApplicationProtocol(a)).ToList(),
            ClientCertificateContext = options.ClientCertificate is null ? null : SslStreamCertificateContext.Create(options.ClientCertificate, [.. options.ClientIntermediates], offline: true),
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, cert, chain, _) => options.TrustedRoot is null || Trusts(options.TrustedRoot, cert, chain),
        };
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            await ssl.AuthenticateAsClientAsync(auth, timeout.Token);
            return ssl;
        }
        catch
        {
            await ssl.DisposeAsync();
            client.Dispose();
            throw;
        }
    }

    /// <summary>One HTTP/1.1 GET over a fresh TLS connection; handshake or read failures become <see cref="Outcome.Error"/>.</summary>
    public static async Task<Outcome> GetAsync(IPEndPoint endpoint, ClientOptions options, string path = "/", string host = "localhost")
    {
        SslStream ssl;
        try
        {
            ssl = await ConnectAsync(endpoint, options);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or SocketException or OperationCanceledException)
        {
            return new Outcome(false, 0, string.Empty, null, SslProtocols.None, string.Empty, default, ex.Message);
        }

        await using (ssl)
        {
            var server = ssl.RemoteCertificate is null ? null : X509CertificateLoader.LoadCertificate(ssl.RemoteCertificate.GetRawCertData());

            // Read now: after a failed read (an alert from the server) SslStream throws on every property.
            var protocol = ssl.SslProtocol;
            var alpn = ssl.NegotiatedApplicationProtocol.ToString();
            var cipher = ssl.NegotiatedCipherSuite;
            try
            {
                await ssl.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
                using var reader = new StreamReader(ssl, Encoding.Latin1);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                var response = await reader.ReadToEndAsync(timeout.Token);
                var status = response.Length >= 12 && int.TryParse(response.AsSpan(9, 3), out var s) ? s : 0;
                return new Outcome(true, status, response, server, protocol, alpn, cipher, status == 0 ? "no response" : null);
            }
            catch (Exception ex) when (ex is AuthenticationException or IOException or SocketException or OperationCanceledException)
            {
                return new Outcome(true, 0, string.Empty, server, protocol, alpn, cipher, ex.Message);
            }
        }
    }

    /// <summary>An HttpClient for <c>https://</c> URIs that connects to <paramref name="endpoint"/> whatever the host (so the host sets SNI).</summary>
    public static HttpClient CreateHttpClient(IPEndPoint endpoint, X509Certificate2 trustedRoot, X509Certificate2? clientCertificate = null, Version? version = null, X509Certificate2[]? intermediates = null)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(endpoint, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            SslOptions = new SslClientAuthenticationOptions
            {
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = (_, cert, chain, _) => Trusts(trustedRoot, cert, chain),
                ClientCertificateContext = clientCertificate is null ? null : SslStreamCertificateContext.Create(clientCertificate, [.. intermediates ?? []], offline: true),
            },
        };
        var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
        if (version is not null)
        {
            client.DefaultRequestVersion = version;
            client.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }

        return client;
    }

    /// <summary>True when <paramref name="certificate"/> chains to <paramref name="root"/> (names are not checked: tests choose SNI freely).</summary>
    public static bool Trusts(X509Certificate2 root, X509Certificate? certificate, X509Chain? sent = null)
    {
        if (certificate is null)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid;
        if (sent is not null)
        {
            chain.ChainPolicy.ExtraStore.AddRange(sent.ChainPolicy.ExtraStore);
            foreach (var element in sent.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }
        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(leaf);
    }
}
