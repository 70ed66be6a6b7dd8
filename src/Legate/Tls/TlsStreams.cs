using System.Net.Security;
using Legate.Tls.OpenSsl;

namespace Legate.Tls;

/// <summary>What the connection code does with a downstream TLS stream of either engine.</summary>
internal static class TlsStreams
{
    /// <summary>Sends close_notify (SslStream or the OpenSSL engine); the transport stays open.</summary>
    public static Task ShutdownAsync(Stream stream) => stream switch
    {
        SslStream ssl => ssl.ShutdownAsync(),
        OpenSslStream openSsl => openSsl.ShutdownAsync(),
        _ => Task.CompletedTask,
    };
}
