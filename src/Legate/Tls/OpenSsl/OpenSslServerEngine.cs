using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Legate.Config;
using static Legate.Tls.OpenSsl.OpenSslNative;

namespace Legate.Tls.OpenSsl;

/// <summary>
/// The second downstream TLS engine: OpenSSL 3 (libssl.so.3, the library SslStream itself runs on
/// under Linux) driven directly, for the filter chains whose <c>DownstreamTlsContext</c> asks for
/// what .NET has no API for: <c>session_ticket_keys</c>, <c>session_timeout</c>,
/// <c>tls_params.ecdh_curves</c>, <c>tls_params.signature_algorithms</c>. One <c>SSL_CTX</c> per
/// compiled context holds what does not change (protocol range, ciphers, groups, signature
/// algorithms, ticket keys and lifetime, resumption switches, callbacks); the certificate is set
/// on each SSL in the servername callback, read from the secret providers then, so a rotated
/// certificate applies to new handshakes only, as with SslStream.
/// </summary>
internal sealed class OpenSslServerEngine
{
    /// <summary>Envoy's default server cipher list (BoringSSL's [A|B] groups flattened in order).</summary>
    private const string DefaultCiphers =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";

    /// <summary>Envoy's default server curves.</summary>
    private const string DefaultCurves = "X25519:P-256";

    private static readonly int s_stateIndex = IsAvailable ? CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero) : -1;
    private static int s_storeIndex = -1;

    private readonly SslContextHandle _context;

    /// <summary>SHA-256 of the configuration a session depends on.</summary>
    private readonly byte[] _configIdentity;

    /// <summary>The session id context for the certificates and CA last in force (one reference: never torn).</summary>
    private SessionContext? _sessionContext;

    /// <summary>The ALPN list in wire form on the pinned heap: the select callback hands OpenSSL a pointer into it.</summary>
    private readonly byte[]? _alpnWire;

    private OpenSslServerEngine(SslContextHandle context, SecretProvider<SessionTicketKeys>? ticketKeys, byte[]? alpnWire, bool requestClientCertificate, bool requireClientCertificate, byte[] configIdentity)
    {
        _configIdentity = configIdentity;
        _context = context;
        TicketKeys = ticketKeys;
        _alpnWire = alpnWire;
        RequestClientCertificate = requestClientCertificate;
        RequireClientCertificate = requireClientCertificate;
    }

    public bool RequestClientCertificate { get; }

    /// <summary>The session ticket keys (inline or SDS; read when a handshake starts), or null for OpenSSL's own random keys.</summary>
    public SecretProvider<SessionTicketKeys>? TicketKeys { get; }

    public bool RequireClientCertificate { get; }

    /// <summary>True when <paramref name="proto"/> sets a field only this engine implements.</summary>
    public static bool IsNeeded(DownstreamTlsContext proto) =>
        proto.SessionTicketKeys is not null || proto.SessionTicketKeysSdsSecretConfig is not null || proto.SessionTimeout is not null
        || proto.CommonTlsContext?.TlsParams is { } p && (p.EcdhCurves.Count > 0 || p.SignatureAlgorithms.Count > 0);

    /// <summary>The name of the first field of <paramref name="proto"/> that needs this engine, for errors.</summary>
    public static string TriggerField(DownstreamTlsContext proto) =>
        proto.SessionTicketKeys is not null ? "session_ticket_keys"
        : proto.SessionTicketKeysSdsSecretConfig is not null ? "session_ticket_keys_sds_secret_config"
        : proto.SessionTimeout is not null ? "session_timeout"
        : proto.CommonTlsContext?.TlsParams?.EcdhCurves.Count > 0 ? "common_tls_context.tls_params.ecdh_curves"
        : "common_tls_context.tls_params.signature_algorithms";

    /// <summary>
    /// Builds the SSL_CTX for <paramref name="proto"/>; null after adding errors under
    /// <paramref name="path"/>. The certificates and validation context are compiled by
    /// <see cref="ServerTlsContext"/>, which owns them.
    /// </summary>
    public static unsafe OpenSslServerEngine? Compile(DownstreamTlsContext proto, string path, ConfigErrors errors, TlsParameters parameters, bool hasValidation, SecretManager secrets)
    {
        var count = errors.Errors.Count;
        if (!IsAvailable || s_stateIndex < 0)
        {
            errors.Add(FieldPath.Field(path, TriggerField(proto)), "needs OpenSSL 3 (libssl.so.3), which this machine does not have; .NET's own TLS has no API for it");
            return null;
        }

        var commonPath = FieldPath.Field(path, "common_tls_context");
        var paramsPath = FieldPath.Field(commonPath, "tls_params");
        SecretProvider<SessionTicketKeys>? ticketKeys = null;
        if (proto.SessionTicketKeys is { } keys)
        {
            ticketKeys = SessionTicketKeys.Compile(keys, FieldPath.Field(path, "session_ticket_keys"), errors) is { } compiled
                ? new SecretProvider<SessionTicketKeys>(string.Empty, compiled)
                : null;
        }
        else if (proto.SessionTicketKeysSdsSecretConfig is { } sds)
        {
            ticketKeys = secrets.SessionTicketKeys(sds, FieldPath.Field(path, "session_ticket_keys_sds_secret_config"), errors);
        }

        if (errors.Errors.Count > count)
        {
            return null;
        }

        var ctx = SSL_CTX_new(TLS_server_method());
        if (ctx == IntPtr.Zero)
        {
            errors.Add(path, "OpenSSL cannot create a TLS context: " + DrainErrors(out _));
            return null;
        }

        var handle = new SslContextHandle(ctx);
        ERR_clear_error();
        var options = SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF;
        if (proto.DisableStatelessSessionResumption)
        {
            options |= SSL_OP_NO_TICKET;
        }

        SSL_CTX_set_options(ctx, options);
        SSL_CTX_ctrl(ctx, SSL_CTRL_SET_SESS_CACHE_MODE, proto.DisableStatefulSessionResumption ? SSL_SESS_CACHE_OFF : SSL_SESS_CACHE_SERVER, IntPtr.Zero);
        SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, 0x0300 + parameters.MinVersion - 9, IntPtr.Zero);
        SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MAX_PROTO_VERSION, 0x0300 + parameters.MaxVersion - 9, IntPtr.Zero);

        var tlsParams = proto.CommonTlsContext?.TlsParams;
        var ciphers = parameters.CipherNames.Count > 0 ? string.Join(':', parameters.CipherNames) : DefaultCiphers;
        if (!SetString(ctx, ciphers, static (c, s) => SSL_CTX_set_cipher_list(c, (byte*)s)))
        {
            errors.Add(FieldPath.Field(paramsPath, "cipher_suites"), $"Failed to initialize cipher suites {ciphers}: {DrainErrors(out _)}");
        }

        var curves = tlsParams is { EcdhCurves.Count: > 0 } ? string.Join(':', tlsParams.EcdhCurves) : DefaultCurves;
        if (!SetString(ctx, curves, static (c, s) => (int)SSL_CTX_ctrl(c, SSL_CTRL_SET_GROUPS_LIST, 0, s)))
        {
            errors.Add(FieldPath.Field(paramsPath, "ecdh_curves"), $"Failed to initialize ECDH curves {curves}: {DrainErrors(out _)}");
        }

        if (tlsParams is { SignatureAlgorithms.Count: > 0 })
        {
            var sigalgs = string.Join(':', tlsParams.SignatureAlgorithms);
            if (!SetString(ctx, sigalgs, static (c, s) => (int)SSL_CTX_ctrl(c, SSL_CTRL_SET_SIGALGS_LIST, 0, s)))
            {
                errors.Add(FieldPath.Field(paramsPath, "signature_algorithms"), $"Failed to initialize TLS signature algorithms {sigalgs}: {DrainErrors(out _)}");
            }
        }

        if (proto.SessionTimeout is { } timeout)
        {
            // OpenSSL's session lifetime, which is also the lifetime hint in its tickets (as BoringSSL's).
            SSL_CTX_set_timeout(ctx, (nint)timeout.Seconds);
        }

        // Sessions carry a context id and resume only where it matches (set per SSL, see SessionContext):
        // this part is the configuration (certificates and validation as configured), never random,
        // so another instance or a restart with the same configuration and ticket keys accepts them.
        var identity = new StringBuilder("legate-downstream:").Append(proto.RequireClientCertificate ?? false).Append(':').Append(hasValidation);
        if (proto.CommonTlsContext is { } identityCommon)
        {
            identity.Append(':').Append(identityCommon.TlsCertificates).Append(':').Append(identityCommon.TlsCertificateSdsSecretConfigs)
                .Append(':').Append(identityCommon.ValidationContext).Append(':').Append(identityCommon.ValidationContextSdsSecretConfig)
                .Append(':').Append(identityCommon.CombinedValidationContext);
        }

        var require = proto.RequireClientCertificate ?? false;
        var request = require || hasValidation;
        if (request)
        {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), IntPtr.Zero);
            SSL_CTX_set_cert_verify_callback(ctx, (IntPtr)(delegate* unmanaged<IntPtr, IntPtr, int>)&VerifyCallback, IntPtr.Zero);
        }

        SSL_CTX_callback_ctrl(ctx, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB, (IntPtr)(delegate* unmanaged<IntPtr, int*, IntPtr, int>)&ServerNameCallback);
        byte[]? alpn = null;
        if (proto.CommonTlsContext is { AlpnProtocols.Count: > 0 } common)
        {
            var wire = new List<byte>();
            foreach (var protocol in common.AlpnProtocols)
            {
                var bytes = Encoding.ASCII.GetBytes(protocol);
                if (bytes.Length is 0 or > 255)
                {
                    errors.Add(FieldPath.Field(commonPath, "alpn_protocols"), $"ALPN protocol '{protocol}' must be 1 to 255 bytes");
                    continue;
                }

                wire.Add((byte)bytes.Length);
                wire.AddRange(bytes);
            }

            alpn = GC.AllocateArray<byte>(wire.Count, pinned: true);
            wire.CopyTo(alpn);
            SSL_CTX_set_alpn_select_cb(ctx, (IntPtr)(delegate* unmanaged<IntPtr, byte**, byte*, byte*, uint, IntPtr, int>)&AlpnCallback, IntPtr.Zero);
        }

        if (ticketKeys is not null && SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, (IntPtr)(delegate* unmanaged<IntPtr, byte*, byte*, IntPtr, IntPtr, int, int>)&TicketKeyCallback) != 1)
        {
            errors.Add(FieldPath.Field(path, "session_ticket_keys"), "OpenSSL refused the ticket key callback: " + DrainErrors(out _));
        }

        if (errors.Errors.Count > count)
        {
            handle.Dispose();
            ticketKeys?.Release();
            return null;
        }

        return new OpenSslServerEngine(handle, ticketKeys, alpn, request, require, SHA256.HashData(Encoding.UTF8.GetBytes(identity.ToString())));
    }

    /// <summary>
    /// Runs the server handshake on <paramref name="inner"/>: the stream and session facts, or the
    /// failure (counted in <paramref name="stats"/>).
    /// </summary>
    public async Task<(Stream? Stream, TlsSessionInfo? Session, string? Failure)> HandshakeAsync(
        ServerTlsContext owner, CertificateValidator? validator, Stream inner, ClientHello? hello, TlsStats stats, CancellationToken cancellationToken)
    {
        var state = new HandshakeState(owner, this, validator, hello) { TicketKeys = TicketKeys?.Current };
        OpenSslStream stream;
        try
        {
            stream = CreateStream(inner, state);
        }
        catch (CryptographicException ex)
        {
            stats.ConnectionError.Inc();
            await inner.DisposeAsync().ConfigureAwait(false);
            return (null, null, "TLS error: " + ex.Message);
        }

        try
        {
            await stream.HandshakeAsync(cancellationToken).ConfigureAwait(false);
            if (stream.SessionReused && state.VerifyRan == false && state.PeerCertificate is { } resumedPeer && validator is not null)
            {
                // A resumed session skips OpenSSL's verification: the certificate it carries is
                // checked again against the validation context in force now (CRLs, pins may have changed).
                state.Check(resumedPeer, null);
                if (state.Result != CertificateValidationResult.Accepted)
                {
                    throw new IOException(state.Failure ?? "TLS error: the resumed session's certificate is no longer accepted");
                }
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            stats.CountHandshakeFailure(state.Result);
            await stream.DisposeAsync().ConfigureAwait(false);
            return (null, null, TlsStats.HandshakeFailureReason(state.Failure, ex));
        }

        var session = new TlsSessionInfo(
            stream.Version, stream.Cipher, stream.ApplicationProtocol, state.ServerName, state.PeerCertificate, state.Certificate?.Leaf,
            state.Validated, state.PeerChain) { SessionReused = stream.SessionReused };
        stats.CountHandshake(session.Cipher, session.Version);
        if (stream.Curve.Length > 0)
        {
            stats.CountCurve(stream.Curve);
        }

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

    private unsafe OpenSslStream CreateStream(Stream inner, HandshakeState state)
    {
        // The certificate for a ClientHello without SNI; the servername callback may pick another.
        state.Certificate = state.Owner.SelectCertificate(string.Empty, state.Hello);
        var native = NativeCertificate.For(state.Certificate);
        var ssl = SSL_new(_context.DangerousGetHandle());
        if (ssl == IntPtr.Zero)
        {
            throw new CryptographicException("OpenSSL cannot create a connection: " + DrainErrors(out _));
        }

        var sid = SessionIdContext(state.Owner.CurrentCertificates(), state.Validator);
        fixed (byte* p = sid)
        {
            SSL_set_session_id_context(ssl, p, (uint)sid.Length);
        }

        var gc = GCHandle.Alloc(state);
        var handle = new SslHandle(_context, ssl, gc);
        var rbio = BIO_new(BIO_s_mem());
        var wbio = BIO_new(BIO_s_mem());
        SSL_set_bio(ssl, rbio, wbio);
        SSL_set_ex_data(ssl, s_stateIndex, GCHandle.ToIntPtr(gc));
        SSL_set_accept_state(ssl);
        if (!native.Apply(ssl))
        {
            handle.Dispose();
            throw new CryptographicException("OpenSSL refused the certificate: " + DrainErrors(out _));
        }

        return new OpenSslStream(inner, handle, rbio, wbio, state);
    }

    private static unsafe bool SetString(IntPtr ctx, string value, Func<IntPtr, IntPtr, int> set)
    {
        var bytes = Encoding.ASCII.GetBytes(value + "\0");
        fixed (byte* p = bytes)
        {
            return set(ctx, (IntPtr)p) == 1;
        }
    }

    /// <summary>
    /// The session id context: the configuration plus the certificates and trusted CAs in force, so
    /// (as in Envoy, which hashes them into its context) a rotation ends resumption of the sessions
    /// made before it, while instances serving the same certificates resume each other's.
    /// </summary>
    private byte[] SessionIdContext(TlsCertificate?[] certificates, CertificateValidator? validator)
    {
        if (_sessionContext is { } cached && cached.Matches(certificates, validator))
        {
            return cached.Sid;
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(_configIdentity);
        foreach (var certificate in certificates)
        {
            if (certificate is not null)
            {
                hash.AppendData(certificate.Leaf.RawData);
            }
        }

        if (validator is not null)
        {
            foreach (var ca in validator.TrustedCa)
            {
                hash.AppendData(ca.RawData);
            }
        }

        var sid = hash.GetHashAndReset();
        _sessionContext = new SessionContext(certificates, validator, sid);
        return sid;
    }

    private static HandshakeState? StateOf(IntPtr ssl)
    {
        var p = SSL_get_ex_data(ssl, s_stateIndex);
        return p == IntPtr.Zero ? null : GCHandle.FromIntPtr(p).Target as HandshakeState;
    }

    /// <summary>SNI: records the name and sets the certificate ServerTlsContext chooses for it.</summary>
    [UnmanagedCallersOnly]
    private unsafe static int ServerNameCallback(IntPtr ssl, int* alert, IntPtr arg)
    {
        var state = StateOf(ssl);
        if (state is null)
        {
            *alert = 80;
            return SSL_TLSEXT_ERR_ALERT_FATAL;
        }

        try
        {
            var name = Utf8(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
            state.ServerName = name?.ToLowerInvariant() ?? state.Hello?.ServerName ?? string.Empty;
            var chosen = state.Owner.SelectCertificate(state.ServerName, state.Hello);
            if (!ReferenceEquals(chosen, state.Certificate))
            {
                if (!NativeCertificate.For(chosen).Apply(ssl))
                {
                    state.Failure = "TLS error: OpenSSL refused the certificate for " + state.ServerName;
                    *alert = 80;
                    return SSL_TLSEXT_ERR_ALERT_FATAL;
                }

                state.Certificate = chosen;
            }

            return SSL_TLSEXT_ERR_OK;
        }
        catch (Exception ex)
        {
            // Never across the native frame: fail this handshake with internal_error.
            state.Failure = "TLS error: " + ex.Message;
            *alert = 80;
            return SSL_TLSEXT_ERR_ALERT_FATAL;
        }
    }

    /// <summary>ALPN, server preference (as Envoy): no common protocol goes on without ALPN.</summary>
    [UnmanagedCallersOnly]
    private unsafe static int AlpnCallback(IntPtr ssl, byte** output, byte* outputLength, byte* input, uint inputLength, IntPtr arg)
    {
        try
        {
            var state = StateOf(ssl);
            var wire = state?.Engine._alpnWire;
            if (wire is null)
            {
                return SSL_TLSEXT_ERR_NOACK;
            }

            // The array is on the pinned heap and lives as long as the engine the state holds.
            var server = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(wire));
            if (SSL_select_next_proto(out var selected, out var length, server, (uint)wire.Length, input, inputLength) != OPENSSL_NPN_NEGOTIATED)
            {
                return SSL_TLSEXT_ERR_NOACK;
            }

            *output = (byte*)selected;
            *outputLength = length;
            return SSL_TLSEXT_ERR_OK;
        }
        catch (Exception)
        {
            return SSL_TLSEXT_ERR_NOACK;
        }
    }

    /// <summary>
    /// The client's certificate chain, handed to the <see cref="CertificateValidator"/> (trusted CA,
    /// CRLs, SAN matchers, pins, ACCEPT_UNTRUSTED), which replaces OpenSSL's own verification.
    /// </summary>
    [UnmanagedCallersOnly]
    private unsafe static int VerifyCallback(IntPtr store, IntPtr arg)
    {
        HandshakeState? state = null;
        try
        {
            if (s_storeIndex < 0)
            {
                s_storeIndex = SSL_get_ex_data_X509_STORE_CTX_idx();
            }

            var ssl = X509_STORE_CTX_get_ex_data(store, s_storeIndex);
            state = ssl == IntPtr.Zero ? null : StateOf(ssl);
            var leafPtr = X509_STORE_CTX_get0_cert(store);
            if (state is null || leafPtr == IntPtr.Zero)
            {
                X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
                return 0;
            }

            state.VerifyRan = true;
            var leaf = NativeCertificate.Load(leafPtr);
            var chain = new X509Certificate2Collection();
            var untrusted = X509_STORE_CTX_get0_untrusted(store);
            var count = untrusted == IntPtr.Zero ? 0 : OPENSSL_sk_num(untrusted);
            for (var i = 0; i < count; i++)
            {
                var item = OPENSSL_sk_value(untrusted, i);
                if (item != leafPtr)
                {
                    chain.Add(NativeCertificate.Load(item));
                }
            }

            state.Check(leaf, chain);
            if (state.Result == CertificateValidationResult.Accepted)
            {
                return 1;
            }

            X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
            return 0;
        }
        catch (Exception ex)
        {
            if (state is not null)
            {
                state.Failure = "TLS error: " + ex.Message;
            }

            X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
            return 0;
        }
    }

    /// <summary>
    /// Session tickets under the configured keys (Envoy's format: 16 bytes name, 32 HMAC-SHA256
    /// secret, 32 AES-256-CBC key): the first key seals new tickets, every key opens one; a ticket
    /// opened with an older key is answered with a new ticket under the first; an unknown name is
    /// a full handshake.
    /// </summary>
    [UnmanagedCallersOnly]
    private unsafe static int TicketKeyCallback(IntPtr ssl, byte* keyName, byte* iv, IntPtr cipher, IntPtr hmac, int encrypt)
    {
        try
        {
            // The keys in force when the handshake started (an SDS rotation applies to new handshakes).
            var keys = StateOf(ssl)?.TicketKeys?.Keys;
            if (keys is null)
            {
                // Not ready: no ticket is issued, and none is opened (a full handshake).
                return 0;
            }

            if (encrypt == 1)
            {
                var key = keys[0];
                key.Name.CopyTo(new Span<byte>(keyName, 16));
                if (RAND_bytes(iv, 16) != 1)
                {
                    return -1;
                }

                return key.Init(cipher, hmac, iv, encrypt: true) ? 1 : -1;
            }

            var name = new ReadOnlySpan<byte>(keyName, 16);
            for (var i = 0; i < keys.Count; i++)
            {
                if (name.SequenceEqual(keys[i].Name))
                {
                    return keys[i].Init(cipher, hmac, iv, encrypt: false) ? (i == 0 ? 1 : 2) : -1;
                }
            }

            return 0;
        }
        catch (Exception)
        {
            return -1;
        }
    }

    private sealed record SessionContext(TlsCertificate?[] Certificates, CertificateValidator? Validator, byte[] Sid)
    {
        public bool Matches(TlsCertificate?[] certificates, CertificateValidator? validator)
        {
            if (!ReferenceEquals(validator, Validator) || certificates.Length != Certificates.Length)
            {
                return false;
            }

            for (var i = 0; i < certificates.Length; i++)
            {
                if (!ReferenceEquals(certificates[i], Certificates[i]))
                {
                    return false;
                }
            }

            return true;
        }
    }

    /// <summary>What one handshake's callbacks found, read back when it is over.</summary>
    internal sealed class HandshakeState(ServerTlsContext owner, OpenSslServerEngine engine, CertificateValidator? validator, ClientHello? hello)
    {
        public CertificateValidator? Validator { get; } = validator;

        public ServerTlsContext Owner { get; } = owner;

        public OpenSslServerEngine Engine { get; } = engine;

        public ClientHello? Hello { get; } = hello;

        public TlsCertificate? Certificate { get; set; }

        public SessionTicketKeys? TicketKeys { get; init; }

        public string ServerName { get; set; } = string.Empty;

        public CertificateValidationResult Result { get; private set; }

        public bool Validated { get; private set; }

        public bool VerifyRan { get; set; }

        public string? Failure { get; set; }

        public X509Certificate2? PeerCertificate { get; set; }

        public X509Certificate2Collection? PeerChain { get; set; }

        public void Check(X509Certificate2 leaf, X509Certificate2Collection? chain)
        {
            PeerCertificate = leaf;
            PeerChain = chain ?? PeerChain;
            if (Validator is null)
            {
                Result = CertificateValidationResult.Accepted;
                return;
            }

            using var x509Chain = new X509Chain();
            if (chain is not null)
            {
                x509Chain.ChainPolicy.ExtraStore.AddRange(chain);
            }

            Result = Validator.Validate(leaf, x509Chain, null, out var validated, out var failure);
            Validated = validated;
            Failure = failure;
        }

        /// <summary>The client sent no certificate where one is required (seen in OpenSSL's error).</summary>
        public void NoCertificate()
        {
            Result = CertificateValidationResult.NoCertificate;
            Failure = "TLS error: peer did not return a certificate";
        }
    }
}
