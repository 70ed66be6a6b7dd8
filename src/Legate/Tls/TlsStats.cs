using System.Collections.Concurrent;
using Legate.Stats;

namespace Legate.Tls;

/// <summary>
/// Envoy's <c>ssl.*</c> stats under a scope (<c>listener.&lt;address&gt;.ssl.</c> downstream,
/// <c>cluster.&lt;name&gt;.ssl.</c> upstream). Cipher and version counters are created on first use
/// with Envoy's names (<c>ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256</c>, <c>ssl.versions.TLSv1.3</c>).
/// .NET does not report the negotiated curve or signature algorithm, so on SslStream
/// <c>ssl.curves.*</c> and <c>ssl.sigalgs.*</c> are not produced; the OpenSSL engine counts
/// <c>ssl.curves.*</c> (Envoy's names).
/// </summary>
internal sealed class TlsStats
{
    private readonly StatsStore _store;
    private readonly string _prefix;
    private readonly string _scope;
    private Counter? _secretsNotReady;
    private readonly ConcurrentDictionary<string, Counter> _dynamic = new(StringComparer.Ordinal);

    public TlsStats(StatsStore store, string scope)
    {
        _store = store;
        _scope = scope;
        _prefix = scope + "ssl.";
        ConnectionError = store.Counter(_prefix + "connection_error");
        Handshake = store.Counter(_prefix + "handshake");
        SessionReused = store.Counter(_prefix + "session_reused");
        NoCertificate = store.Counter(_prefix + "no_certificate");
        FailVerifyNoCert = store.Counter(_prefix + "fail_verify_no_cert");
        FailVerifyError = store.Counter(_prefix + "fail_verify_error");
        FailVerifySan = store.Counter(_prefix + "fail_verify_san");
        FailVerifyCertHash = store.Counter(_prefix + "fail_verify_cert_hash");
    }

    public Counter ConnectionError { get; }

    public Counter Handshake { get; }

    public Counter SessionReused { get; }

    public Counter NoCertificate { get; }

    public Counter FailVerifyNoCert { get; }

    public Counter FailVerifyError { get; }

    public Counter FailVerifySan { get; }

    public Counter FailVerifyCertHash { get; }

    /// <summary>
    /// A connection refused because an SDS secret of its TLS context has not arrived (Envoy's
    /// <c>server_ssl_socket_factory.downstream_context_secrets_not_ready</c> for listeners,
    /// <c>client_ssl_socket_factory.upstream_context_secrets_not_ready</c> for clusters).
    /// </summary>
    public void CountSecretsNotReady(bool downstream)
    {
        var counter = _secretsNotReady ??= _store.Counter(_scope + (downstream
            ? "server_ssl_socket_factory.downstream_context_secrets_not_ready"
            : "client_ssl_socket_factory.upstream_context_secrets_not_ready"));
        counter.Inc();
    }

    /// <summary>A failed server handshake: the verification failure that caused it, else a connection error.</summary>
    public void CountHandshakeFailure(CertificateValidationResult result)
    {
        if (result != CertificateValidationResult.Accepted)
        {
            Count(result);
        }
        else
        {
            ConnectionError.Inc();
        }
    }

    /// <summary>The reason a failed server handshake reports: the verification's own words, a timeout, or the TLS error.</summary>
    public static string HandshakeFailureReason(string? verificationFailure, Exception exception) =>
        verificationFailure ?? (exception is OperationCanceledException ? "TLS handshake timed out" : "TLS error: " + exception.Message);

    public void Count(CertificateValidationResult result)
    {
        switch (result)
        {
            case CertificateValidationResult.NoCertificate:
                FailVerifyNoCert.Inc();
                break;
            case CertificateValidationResult.ChainError:
                FailVerifyError.Inc();
                break;
            case CertificateValidationResult.SanMismatch:
                FailVerifySan.Inc();
                break;
            case CertificateValidationResult.HashMismatch:
                FailVerifyCertHash.Inc();
                break;
        }
    }

    /// <summary>Counts a completed handshake: <c>handshake</c>, its cipher and its version.</summary>
    public void CountHandshake(string cipher, string version)
    {
        Handshake.Inc();
        Dynamic("ciphers.", cipher).Inc();
        Dynamic("versions.", version).Inc();
    }

    /// <summary>Counts the key exchange group of a handshake (<c>ssl.curves.X25519</c>); only the OpenSSL engine knows it.</summary>
    public void CountCurve(string curve) => Dynamic("curves.", curve).Inc();

    private Counter Dynamic(string kind, string value)
    {
        var key = kind + value;
        return _dynamic.TryGetValue(key, out var counter)
            ? counter
            : _dynamic.GetOrAdd(key, static (k, self) => self._store.Counter(self._prefix + k), this);
    }
}
