namespace Legate.Tls;

/// <summary>The public key algorithm of a certificate, for choosing among several by what the client supports.</summary>
internal enum CertificateKeyType
{
    Other,
    Rsa,
    Ecdsa,
}
