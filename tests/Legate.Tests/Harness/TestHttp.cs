using System.Net;

namespace Legate.Tests.Harness;

/// <summary>HTTP clients for tests: no proxy from the environment, no connection reuse surprises.</summary>
internal static class TestHttp
{
    public static HttpClient CreateClient(Version? version = null)
    {
        var handler = new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false };
        var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
        if (version is not null)
        {
            // Exact version: HTTP/2 over http:// means prior knowledge (h2c).
            client.DefaultRequestVersion = version;
            client.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }

        return client;
    }
}
