namespace Legate.Tls;

/// <summary>The outcome of checking a peer certificate, one value per Envoy failure counter.</summary>
internal enum CertificateValidationResult
{
    Accepted,

    /// <summary>A certificate was required and none was sent (<c>ssl.fail_verify_no_cert</c>).</summary>
    NoCertificate,

    /// <summary>Chain, expiry or revocation failure (<c>ssl.fail_verify_error</c>).</summary>
    ChainError,

    /// <summary>No subject alternative name matched (<c>ssl.fail_verify_san</c>).</summary>
    SanMismatch,

    /// <summary>Neither verify_certificate_hash nor verify_certificate_spki matched (<c>ssl.fail_verify_cert_hash</c>).</summary>
    HashMismatch,
}
