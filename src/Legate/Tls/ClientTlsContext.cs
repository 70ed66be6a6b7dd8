using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Legate.Config;

namespace Legate.Tls;

/// <summary>
/// A compiled <c>UpstreamTlsContext</c> (a cluster's <c>envoy.transport_sockets.tls</c>): runs the
/// client side of each upstream handshake with <see cref="SslStream"/>. The client certificate and
/// the validation context are read when a handshake starts (SDS rotation applies to new
/// connections). The server certificate is checked by the shared <see cref="CertificateValidator"/>
/// inside the handshake; without a validation context it is not checked, as in Envoy.
/// </summary>
internal sealed class ClientTlsContext
{
    /// <summary>BoringSSL's packed error code for CERTIFICATE_VERIFY_FAILED, which Envoy prints in transport failure reasons.</summary>
    private const string VerifyFailedPrefix = "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:";
    private const string ErrorEnd = ":TLS_error_end";

    private readonly SecretProvider<TlsCertificate>? _certificate;
    private readonly SecretProvider<CertificateValidator>? _validator;
    private readonly TlsParameters _parameters;
    private readonly List<SslApplicationProtocol>? _alpn;
    private readonly bool _allowResume;
    private SecretManager? _registeredWith;
    private int _released;

    private ClientTlsContext(
        SecretProvider<TlsCertificate>? certificate, SecretProvider<CertificateValidator>? validator, TlsParameters parameters,
        List<SslApplicationProtocol>? alpn, string sni, bool allowResume, TlsStats stats)
    {
        _certificate = certificate;
        _validator = validator;
        _parameters = parameters;
        _alpn = alpn;
        Sni = sni;
        _allowResume = allowResume;
        Stats = stats;
    }

    /// <summary>The configured <c>sni</c> ("" = none is sent unless auto_sni supplies one).</summary>
    public string Sni { get; }

    /// <summary><c>cluster.&lt;name&gt;.ssl.*</c>.</summary>
    public TlsStats Stats { get; }

    /// <summary>Completes when the context's SDS secrets have arrived (or their sources stopped waiting): a cluster warms on it.</summary>
    public Task Ready => Task.WhenAll(_certificate?.Ready ?? Task.CompletedTask, _validator?.Ready ?? Task.CompletedTask);

    /// <summary>False while an SDS secret has not arrived.</summary>
    public bool SecretsReady => (_certificate is null || _certificate.Current is not null) && (_validator is null || _validator.Current is not null);

    /// <summary>The ALPN protocols offered.</summary>
    public IReadOnlyList<SslApplicationProtocol>? ApplicationProtocols => _alpn;

    /// <summary>The ALPN an HTTP/2 connection pool offers when <c>alpn_protocols</c> is empty (Envoy's fallback).</summary>
    public static readonly List<SslApplicationProtocol> Http2Alpn = [SslApplicationProtocol.Http2];

    /// <summary>The ALPN an HTTP/1.1 connection pool offers when <c>alpn_protocols</c> is empty.</summary>
    public static readonly List<SslApplicationProtocol> Http11Alpn = [SslApplicationProtocol.Http11];

    public static ClientTlsContext? Compile(UpstreamTlsContext proto, string path, ConfigErrors errors, SecretManager secrets, TlsStats stats)
    {
        var count = errors.Errors.Count;
        var common = proto.CommonTlsContext ?? new CommonTlsContext();
        var commonPath = FieldPath.Field(path, "common_tls_context");
        var certificates = ServerTlsContext.CompileCertificates(common, commonPath, errors, secrets);
        if (certificates.Count > 1)
        {
            // Envoy: "Multiple TLS certificates are not supported for client contexts".
            errors.Add(FieldPath.Field(commonPath, "tls_certificates"), "Multiple TLS certificates are not supported for client contexts");
        }

        var validator = ServerTlsContext.CompileValidation(common, commonPath, errors, secrets);
        var parameters = TlsParameters.Compile(common.TlsParams, FieldPath.Field(commonPath, "tls_params"), errors);
        var alpn = ServerTlsContext.CompileAlpn(common);
        if (common.TlsParams is { } tlsParams)
        {
            // Upstream TLS is SslStream only: it has no API for these (downstream chains use the OpenSSL engine).
            if (tlsParams.EcdhCurves.Count > 0)
            {
                errors.Warn(FieldPath.Field(FieldPath.Field(commonPath, "tls_params"), "ecdh_curves"), "field envoy.extensions.transport_sockets.tls.v3.TlsParameters.ecdh_curves is parsed but not implemented yet for upstream TLS; it is ignored");
            }

            if (tlsParams.SignatureAlgorithms.Count > 0)
            {
                errors.Warn(FieldPath.Field(FieldPath.Field(commonPath, "tls_params"), "signature_algorithms"), "field envoy.extensions.transport_sockets.tls.v3.TlsParameters.signature_algorithms is parsed but not implemented yet for upstream TLS; it is ignored");
            }
        }

        if (proto.Sni.Length > 255)
        {
            errors.Add(FieldPath.Field(path, "sni"), "sni is longer than 255 bytes");
        }

        if (errors.Errors.Count > count || parameters is null)
        {
            return null;
        }

        // max_session_keys: 0 turns session resumption off; any other value lets .NET keep its own
        // per-host session cache (its size is not configurable).
        var allowResume = proto.MaxSessionKeys is not { } keys || keys > 0;
        var context = new ClientTlsContext(certificates.Count > 0 ? certificates[0] : null, validator, parameters, alpn, proto.Sni, allowResume, stats);
        secrets.RegisterCertificates(context.CertificatesInUse);
        context._registeredWith = secrets;
        // A listener or cluster that fails to compile after this takes the context off /certs (its secrets are recorded on their own).
        Legate.Xds.SubscriptionHolds.Record(() => secrets.UnregisterCertificates(context.CertificatesInUse));
        return context;
    }

    /// <summary>
    /// The context is no longer used (its CDS cluster was replaced, removed or never made it): its SDS
    /// secrets are released (a secret no other context uses leaves the SDS subscription) and /certs
    /// stops listing it. Once per context.
    /// </summary>
    public void ReleaseSecrets()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            return;
        }

        _registeredWith?.UnregisterCertificates(CertificatesInUse);
        _certificate?.Release();
        _validator?.Release();
    }

    /// <summary>
    /// Runs the client handshake on <paramref name="inner"/> (owned: disposed on failure).
    /// <paramref name="serverName"/> is the SNI to send ("" = none); <paramref name="verifyDnsName"/>
    /// a DNS name the server certificate must carry (auto_san_validation), or null;
    /// <paramref name="alpnFallback"/> is offered when <c>alpn_protocols</c> is empty (Envoy offers
    /// the pool's protocol: <see cref="Http2Alpn"/>, <see cref="Http11Alpn"/>; none for TCP).
    /// Returns the stream and its session, or the failure as Envoy's transport failure reason.
    /// </summary>
    public async Task<(SslStream? Stream, TlsSessionInfo? Session, string? Failure)> HandshakeAsync(
        Stream inner, string serverName, string? verifyDnsName, List<SslApplicationProtocol>? alpnFallback, CancellationToken cancellationToken)
    {
        if (!SecretsReady)
        {
            // Envoy's upstream_context_secrets_not_ready: the connection fails before any handshake.
            Stats.CountSecretsNotReady(downstream: false);
            await inner.DisposeAsync().ConfigureAwait(false);
            return (null, null, "TLS_error:|SDS secrets are not ready" + ErrorEnd);
        }

        var state = new HandshakeState(this, verifyDnsName);
        var observed = new HandshakeObserverStream(inner, observeWrites: false);
        var stream = new SslStream(observed, leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            EnabledSslProtocols = _parameters.Protocols,
            CipherSuitesPolicy = _parameters.Ciphers,
            ApplicationProtocols = _alpn ?? alpnFallback,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            AllowTlsResume = _allowResume,
            ClientCertificateContext = _certificate?.Current?.Context,
            RemoteCertificateValidationCallback = state.Validate,
        };

        try
        {
            await stream.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            string reason;
            if (state.Result != CertificateValidationResult.Accepted)
            {
                Stats.Count(state.Result);
                reason = VerifyFailedPrefix + state.Failure + ErrorEnd;
            }
            else
            {
                Stats.ConnectionError.Inc();
                reason = ex is OperationCanceledException ? "TLS handshake timed out" : "TLS_error:|" + Innermost(ex) + ErrorEnd;
            }

            await stream.DisposeAsync().ConfigureAwait(false);
            return (null, null, reason);
        }

        var session = new TlsSessionInfo(stream, serverName, state.Validated, state.PeerChain) { SessionReused = observed.Detector.Resumed };
        Stats.CountHandshake(session.Cipher, session.Version);
        if (session.SessionReused)
        {
            Stats.SessionReused.Inc();
        }
        return (stream, session, null);
    }

    /// <summary>The OpenSSL error text underneath .NET's exception ("error:0A00010B:SSL routines::wrong version number").</summary>
    private static string Innermost(Exception ex)
    {
        var inner = ex;
        while (inner.InnerException is not null)
        {
            inner = inner.InnerException;
        }

        return inner.Message;
    }

    /// <summary>The certificates and CA in use now, for /certs.</summary>
    private IEnumerable<SecretManager.CertificateEntry> CertificatesInUse()
    {
        if (_certificate is not null)
        {
            yield return new SecretManager.CertificateEntry("cert_chain", _certificate.Current, null);
        }

        if (_validator is not null)
        {
            yield return new SecretManager.CertificateEntry("ca_cert", null, _validator.Current);
        }
    }

    /// <summary>Per-handshake state: what the validation callback found.</summary>
    private sealed class HandshakeState(ClientTlsContext context, string? verifyDnsName)
    {
        public CertificateValidationResult Result { get; private set; }

        public bool Validated { get; private set; }

        public string? Failure { get; private set; }

        public X509Certificate2Collection? PeerChain { get; private set; }

        public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
        {
            if (certificate is null)
            {
                Result = CertificateValidationResult.NoCertificate;
                Failure = "verify cert failed: no certificate";
                return false;
            }

            var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            if (chain is not null)
            {
                PeerChain = [.. chain.ChainPolicy.ExtraStore];
            }

            if (context._validator?.Current is { } validator)
            {
                Result = validator.Validate(leaf, chain, verifyDnsName, out var validated, out var failure);
                Validated = validated;
                Failure = failure;
                return Result == CertificateValidationResult.Accepted;
            }

            // No validation context: the server is not verified (Envoy's default), except for the
            // host name auto_san_validation asks for.
            if (verifyDnsName is not null && !CertificateValidator.HasDnsName(leaf, verifyDnsName))
            {
                Result = CertificateValidationResult.SanMismatch;
                Failure = CertificateValidator.VerifySanListFailure;
                return false;
            }

            return true;
        }
    }
}
