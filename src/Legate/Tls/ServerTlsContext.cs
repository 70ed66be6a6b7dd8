using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Legate.Config;

namespace Legate.Tls;

/// <summary>
/// A compiled <c>DownstreamTlsContext</c> (the <c>envoy.transport_sockets.tls</c> transport socket
/// of a filter chain): runs the server side of each handshake with <see cref="SslStream"/>, or with
/// the <see cref="OpenSsl.OpenSslServerEngine"/> when the context sets what SslStream cannot do
/// (session ticket keys, session timeout, ECDH curves, signature algorithms).
/// Certificates (inline or from secrets, rotated by SDS) are read when a handshake starts; the
/// certificate is chosen by SNI (exact name, then wildcard, else the first) and then by key type
/// (ECDSA only when the client offers ECDSA signatures). The peer certificate is checked by the
/// <see cref="CertificateValidator"/> inside the handshake, so a rejected client gets a TLS alert.
/// </summary>
internal sealed class ServerTlsContext
{
    private readonly SecretProvider<TlsCertificate>[] _certificates;
    private readonly SecretProvider<CertificateValidator>? _validator;
    private readonly TlsParameters _parameters;
    private readonly List<SslApplicationProtocol>? _alpn;
    private readonly bool _requireClientCertificate;
    private readonly bool _allowResume;
    private readonly bool _fullScan;

    /// <summary>The OpenSSL engine, for contexts that set what SslStream cannot do; null on SslStream.</summary>
    private readonly OpenSsl.OpenSslServerEngine? _openSsl;
    private SecretManager? _registeredWith;
    private int _released;

    /// <summary>
    /// The options of the last handshake that needed no per-handshake state (one certificate, no
    /// client-certificate validation), with the certificate they were built for: reused while that
    /// certificate is in force, so a plain TLS listener allocates no options per handshake.
    /// </summary>
    private SharedOptions? _sharedOptions;

    private ServerTlsContext(
        SecretProvider<TlsCertificate>[] certificates, SecretProvider<CertificateValidator>? validator, TlsParameters parameters,
        List<SslApplicationProtocol>? alpn, bool requireClientCertificate, bool allowResume, bool fullScan, OpenSsl.OpenSslServerEngine? openSsl)
    {
        _openSsl = openSsl;
        _certificates = certificates;
        _validator = validator;
        _parameters = parameters;
        _alpn = alpn;
        _requireClientCertificate = requireClientCertificate;
        _allowResume = allowResume;
        _fullScan = fullScan;
    }

    /// <summary>True when a ClientHello peek is needed before the handshake (certificates of different key types).</summary>
    public bool NeedsClientHello
    {
        get
        {
            var first = _certificates[0].Current?.KeyType;
            foreach (var provider in _certificates)
            {
                if (provider.Current?.KeyType != first)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>
    /// The context is no longer used (its LDS listener was replaced, removed or never made it): its
    /// SDS secrets are released, and a secret no other context uses leaves the SDS subscription.
    /// </summary>
    public void ReleaseSecrets()
    {
        // Once per context: each of its secrets was taken once when it compiled.
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            return;
        }

        _registeredWith?.UnregisterCertificates(CertificatesInUse);
        foreach (var provider in _certificates)
        {
            provider.Release();
        }

        _validator?.Release();
        _openSsl?.TicketKeys?.Release();
    }

    /// <summary>
    /// Completes when every secret of the context has its first value, or its source gave up
    /// waiting (initial_fetch_timeout): a listener warms on it and binds only then, as Envoy's.
    /// </summary>
    public Task Ready
    {
        get
        {
            var tasks = new List<Task>(_certificates.Length + 1);
            foreach (var provider in _certificates)
            {
                tasks.Add(provider.Ready);
            }

            if (_validator is not null)
            {
                tasks.Add(_validator.Ready);
            }

            if (_openSsl?.TicketKeys is { } keys)
            {
                tasks.Add(keys.Ready);
            }

            return Task.WhenAll(tasks);
        }
    }

    /// <summary>False while an SDS secret has not arrived: connections are then refused (Envoy's NotReadySslSocket).</summary>
    public bool SecretsReady
    {
        get
        {
            foreach (var provider in _certificates)
            {
                if (provider.Current is null)
                {
                    return false;
                }
            }

            return (_validator is null || _validator.Current is not null) && _openSsl?.TicketKeys is not { Current: null };
        }
    }

    /// <summary>The ALPN protocols offered, or null.</summary>
    public IReadOnlyList<SslApplicationProtocol>? ApplicationProtocols => _alpn;

    public static ServerTlsContext? Compile(DownstreamTlsContext proto, string path, ConfigErrors errors, SecretManager secrets)
    {
        var count = errors.Errors.Count;
        var common = proto.CommonTlsContext ?? new CommonTlsContext();
        var commonPath = FieldPath.Field(path, "common_tls_context");
        var certificates = CompileCertificates(common, commonPath, errors, secrets);
        if (certificates.Count == 0 && errors.Errors.Count == count)
        {
            errors.Add(FieldPath.Field(commonPath, "tls_certificates"), "a server TLS context needs at least one certificate (tls_certificates or tls_certificate_sds_secret_configs)");
        }

        var validator = CompileValidation(common, commonPath, errors, secrets);
        var parameters = TlsParameters.Compile(common.TlsParams, FieldPath.Field(commonPath, "tls_params"), errors);
        var alpn = CompileAlpn(common);
        if (errors.Errors.Count > count || parameters is null)
        {
            return null;
        }

        OpenSsl.OpenSslServerEngine? openSsl = null;
        if (OpenSsl.OpenSslServerEngine.IsNeeded(proto))
        {
            openSsl = OpenSsl.OpenSslServerEngine.Compile(proto, path, errors, parameters, validator is not null, secrets);
            if (openSsl is null)
            {
                return null;
            }
        }

        var allowResume = !proto.DisableStatelessSessionResumption && !proto.DisableStatefulSessionResumption;
        var context = new ServerTlsContext(
            [.. certificates], validator, parameters, alpn, proto.RequireClientCertificate ?? false, allowResume, proto.FullScanCertsOnSniMismatch ?? false, openSsl);
        secrets.RegisterCertificates(context.CertificatesInUse);
        context._registeredWith = secrets;
        // A listener or cluster that fails to compile after this takes the context off /certs (its secrets are recorded on their own).
        Legate.Xds.SubscriptionHolds.Record(() => secrets.UnregisterCertificates(context.CertificatesInUse));
        return context;
    }

    internal static List<SecretProvider<TlsCertificate>> CompileCertificates(CommonTlsContext common, string commonPath, ConfigErrors errors, SecretManager secrets)
    {
        var certificates = new List<SecretProvider<TlsCertificate>>();
        for (var i = 0; i < common.TlsCertificates.Count; i++)
        {
            if (TlsCertificate.Load(common.TlsCertificates[i], FieldPath.Index(FieldPath.Field(commonPath, "tls_certificates"), i), errors) is { } certificate)
            {
                certificates.Add(new SecretProvider<TlsCertificate>(string.Empty, certificate));
            }
        }

        for (var i = 0; i < common.TlsCertificateSdsSecretConfigs.Count; i++)
        {
            if (secrets.TlsCertificate(common.TlsCertificateSdsSecretConfigs[i], FieldPath.Index(FieldPath.Field(commonPath, "tls_certificate_sds_secret_configs"), i), errors) is { } provider)
            {
                certificates.Add(provider);
            }
        }

        return certificates;
    }

    internal static SecretProvider<CertificateValidator>? CompileValidation(CommonTlsContext common, string commonPath, ConfigErrors errors, SecretManager secrets)
    {
        switch (common.ValidationContextTypeCase)
        {
            case CommonTlsContext.ValidationContextTypeOneofCase.ValidationContext:
                return CertificateValidator.Compile(common.ValidationContext, FieldPath.Field(commonPath, "validation_context"), errors) is { } v
                    ? new SecretProvider<CertificateValidator>(string.Empty, v)
                    : null;
            case CommonTlsContext.ValidationContextTypeOneofCase.ValidationContextSdsSecretConfig:
                return secrets.ValidationContext(common.ValidationContextSdsSecretConfig, FieldPath.Field(commonPath, "validation_context_sds_secret_config"), errors);
            case CommonTlsContext.ValidationContextTypeOneofCase.CombinedValidationContext:
                var combinedPath = FieldPath.Field(commonPath, "combined_validation_context");
                var combined = common.CombinedValidationContext;
                if (combined.DefaultValidationContext is { } defaults && (defaults.MatchTypedSubjectAltNames.Count > 0 || defaults.VerifyCertificateHash.Count > 0 || defaults.VerifyCertificateSpki.Count > 0))
                {
                    // Envoy merges the default context into the SDS one; Legate merges the SAN matchers and pins only when the SDS one is static.
                    errors.Add(FieldPath.Field(combinedPath, "default_validation_context"), "combined_validation_context with a default_validation_context is not supported yet; put the matchers in the validation context secret");
                    return null;
                }

                return secrets.ValidationContext(combined.ValidationContextSdsSecretConfig, FieldPath.Field(combinedPath, "validation_context_sds_secret_config"), errors);
            case CommonTlsContext.ValidationContextTypeOneofCase.None:
                return null;
            default:
                errors.Add(commonPath, $"{common.ValidationContextTypeCase} is not supported");
                return null;
        }
    }

    internal static List<SslApplicationProtocol>? CompileAlpn(CommonTlsContext common)
    {
        if (common.AlpnProtocols.Count == 0)
        {
            return null;
        }

        var alpn = new List<SslApplicationProtocol>(common.AlpnProtocols.Count);
        foreach (var protocol in common.AlpnProtocols)
        {
            alpn.Add(new SslApplicationProtocol(protocol));
        }

        return alpn;
    }

    /// <summary>
    /// Runs the server handshake on <paramref name="inner"/>. Returns the stream and its session
    /// facts, or null when it failed (counted in <paramref name="stats"/>, reason in <paramref name="failure"/>).
    /// </summary>
    public async Task<(Stream? Stream, TlsSessionInfo? Session, string? Failure)> HandshakeAsync(Stream inner, ClientHello? hello, TlsStats stats, CancellationToken cancellationToken)
    {
        if (!SecretsReady)
        {
            stats.CountSecretsNotReady(downstream: true);
            await inner.DisposeAsync().ConfigureAwait(false);
            return (null, null, "TLS error: SDS secrets are not ready");
        }

        if (_openSsl is not null)
        {
            return await _openSsl.HandshakeAsync(this, _validator?.Current, inner, hello, stats, cancellationToken).ConfigureAwait(false);
        }

        var state = new HandshakeState(this, hello);
        var observed = new HandshakeObserverStream(inner, observeWrites: true);
        var stream = new SslStream(observed, leaveInnerStreamOpen: false);
        try
        {
            await stream.AuthenticateAsServerAsync(static (s, info, st, _) => ((HandshakeState)st!).Options(info), state, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            stats.CountHandshakeFailure(state.Result);
            await stream.DisposeAsync().ConfigureAwait(false);
            return (null, null, TlsStats.HandshakeFailureReason(state.Failure, ex));
        }

        var session = new TlsSessionInfo(stream, state.ServerName, state.Validated, state.PeerChain) { SessionReused = observed.Detector.Resumed };
        stats.CountHandshake(session.Cipher, session.Version);
        if (session.SessionReused)
        {
            stats.SessionReused.Inc();
        }

        if (!session.PeerCertificatePresented)
        {
            stats.NoCertificate.Inc();
        }

        return (stream, session, null);
    }

    /// <summary>The certificate of each provider now (all have arrived: checked before a handshake), in configuration order.</summary>
    internal TlsCertificate?[] CurrentCertificates()
    {
        var current = new TlsCertificate?[_certificates.Length];
        for (var i = 0; i < current.Length; i++)
        {
            current[i] = _certificates[i].Current;
        }

        return current;
    }

    /// <summary>The certificates and CA in use now, for /certs.</summary>
    private IEnumerable<SecretManager.CertificateEntry> CertificatesInUse()
    {
        foreach (var provider in _certificates)
        {
            yield return new SecretManager.CertificateEntry("cert_chain", provider.Current, null);
        }

        if (_validator is not null)
        {
            yield return new SecretManager.CertificateEntry("ca_cert", null, _validator.Current);
        }
    }

    /// <summary>The certificate for a handshake: by SNI (exact, wildcard, else the first), then by key type.</summary>
    internal TlsCertificate SelectCertificate(string serverName, ClientHello? hello)
    {
        if (_certificates.Length == 1)
        {
            // Checked before the handshake; a secret is never taken away once it arrived.
            return _certificates[0].Current ?? throw new InvalidOperationException("SDS secrets are not ready");
        }

        var snapshot = new TlsCertificate[_certificates.Length];
        for (var i = 0; i < snapshot.Length; i++)
        {
            // Checked before the handshake; a secret is never taken away once it arrived.
            snapshot[i] = _certificates[i].Current ?? throw new InvalidOperationException("SDS secrets are not ready");
        }

        if (snapshot.Length == 1)
        {
            return snapshot[0];
        }

        var candidates = new List<TlsCertificate>(snapshot.Length);
        if (serverName.Length > 0)
        {
            foreach (var c in snapshot)
            {
                if (c.MatchesExactly(serverName))
                {
                    candidates.Add(c);
                }
            }

            if (candidates.Count == 0)
            {
                foreach (var c in snapshot)
                {
                    if (c.MatchesWildcard(serverName))
                    {
                        candidates.Add(c);
                    }
                }
            }
        }

        if (candidates.Count == 0)
        {
            if (_fullScan || serverName.Length == 0)
            {
                candidates.AddRange(snapshot);
            }
            else
            {
                // Without a full scan, a name nobody serves gets the default (first) certificate.
                return snapshot[0];
            }
        }

        // As in Envoy: an ECDSA certificate when the client accepts ECDSA signatures, else the first other one.
        var ecdsa = hello?.SupportsEcdsa ?? false;
        foreach (var c in candidates)
        {
            if ((c.KeyType == CertificateKeyType.Ecdsa) == ecdsa)
            {
                return c;
            }
        }

        return candidates[0];
    }

    /// <summary>Options built for one certificate (one reference, so readers never see a torn pair).</summary>
    private sealed record SharedOptions(TlsCertificate Certificate, SslServerAuthenticationOptions Options);

    /// <summary>Per-handshake state: what the validation callback found.</summary>
    private sealed class HandshakeState(ServerTlsContext context, ClientHello? hello)
    {
        public CertificateValidationResult Result { get; private set; }

        public bool Validated { get; private set; }

        public string? Failure { get; private set; }

        public string ServerName { get; private set; } = string.Empty;

        public X509Certificate2Collection? PeerChain { get; private set; }

        public ValueTask<SslServerAuthenticationOptions> Options(SslClientHelloInfo info)
        {
            ServerName = info.ServerName?.ToLowerInvariant() ?? hello?.ServerName ?? string.Empty;
            var certificate = context.SelectCertificate(ServerName, hello);
            var validator = context._validator?.Current;
            var stateless = validator is null && !context._requireClientCertificate;
            if (stateless && context._sharedOptions is { } shared && ReferenceEquals(shared.Certificate, certificate))
            {
                return ValueTask.FromResult(shared.Options);
            }

            var options = new SslServerAuthenticationOptions
            {
                ServerCertificateContext = certificate.Context,
                EnabledSslProtocols = context._parameters.Protocols,
                CipherSuitesPolicy = context._parameters.Ciphers,
                ApplicationProtocols = context._alpn,
                ClientCertificateRequired = validator is not null || context._requireClientCertificate,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                AllowTlsResume = context._allowResume,
                // No client certificate is asked for without validation: nothing to check per handshake.
                RemoteCertificateValidationCallback = stateless ? null : (_, cert, chain, errors) => Validate(validator, cert, chain, errors),
            };
            if (stateless)
            {
                context._sharedOptions = new SharedOptions(certificate, options);
            }

            return ValueTask.FromResult(options);
        }

        private bool Validate(CertificateValidator? validator, System.Security.Cryptography.X509Certificates.X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
        {
            if (certificate is null)
            {
                if (context._requireClientCertificate)
                {
                    Result = CertificateValidationResult.NoCertificate;
                    Failure = "TLS error: peer did not return a certificate";
                    return false;
                }

                return true;
            }

            var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            if (chain is not null)
            {
                PeerChain = [.. chain.ChainPolicy.ExtraStore];
            }

            if (validator is null)
            {
                return true;
            }

            Result = validator.Validate(leaf, chain, null, out var validated, out var failure);
            Validated = validated;
            Failure = failure;
            return Result == CertificateValidationResult.Accepted;
        }
    }
}
