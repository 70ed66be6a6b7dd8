using System.Net.Sockets;
using System.Text;
using Legate.Tests.Harness;

namespace Legate.Tests.Http;

/// <summary>
/// delayed_close_timeout: a connection that closes with request bytes still unread (the proxy
/// answered before reading the body) waits for the peer instead of resetting, so the response
/// survives; after the timeout it closes anyway.
/// </summary>
public sealed class DelayedCloseTests
{
    private static string Config(string hcmExtra) =>
        TestConfigs.Admin() + "static_resources:\n  listeners:\n"
        + TestConfigs.DirectResponseListener("web", status: 403, body: "uploads are closed", extraHcm: hcmExtra);

    [Fact]
    public async Task ResponseToAnUnreadUploadArrivesWhole()
    {
        // A 1 MiB answer the client reads only after Legate finished the request: without the
        // delay, Legate's close (with the upload unread) resets the connection and the part of
        // the answer still in its send buffer is lost.
        var body = new string('r', 1024 * 1024);
        var yaml = TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: web
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: web
                      delayed_close_timeout: 30s
                      route_config:
                        max_direct_response_body_size_bytes: 2000000
                        virtual_hosts:
                        - name: all
                          domains: ["*"]
                          routes:
                          - match: { prefix: "/" }
                            direct_response: { status: 403, body: { inline_string: "{{body}}" } }
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
            """;
        await using var legate = await InProcessLegate.StartAsync(yaml);
        using var client = new TcpClient { ReceiveBufferSize = 16 * 1024 };
        await client.ConnectAsync(legate.ListenerEndpoint("web"));
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 16777216\r\n\r\n"));
        var sending = SendSomeBodyAsync(stream, 2 * 1024 * 1024);

        var completed = legate.Server.Stats.Counter("http.web.downstream_rq_completed");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (completed.Value == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        Assert.Equal(1, completed.Value);
        var response = await ReadLengthDelimitedResponseAsync(stream);

        Assert.StartsWith("HTTP/1.1 403 Forbidden\r\n", response, StringComparison.Ordinal);
        Assert.Contains("\r\nconnection: close\r\n", response, StringComparison.Ordinal);
        Assert.Equal(body.Length, response.Length - response.IndexOf("\r\n\r\n", StringComparison.Ordinal) - 4);
        client.Close();
        await sending;
    }

    [Fact]
    public async Task AfterTheTimeoutTheConnectionClosesEvenIfThePeerDoesNot()
    {
        await using var legate = await InProcessLegate.StartAsync(Config("delayed_close_timeout: 0.2s"));
        using var client = new TcpClient();
        await client.ConnectAsync(legate.ListenerEndpoint("web"));
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"));

        var response = await ReadResponseAsync(stream, "uploads are closed");
        Assert.StartsWith("HTTP/1.1 403 ", response, StringComparison.Ordinal);

        // We never close; Legate does once the delay is over: EOF.
        var buffer = new byte[64];
        int read;
        do
        {
            read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        }
        while (read > 0);
    }

    private static async Task SendSomeBodyAsync(NetworkStream stream, int bytes)
    {
        var chunk = new byte[64 * 1024];
        try
        {
            for (var sent = 0; sent < bytes; sent += chunk.Length)
            {
                await stream.WriteAsync(chunk);
            }
        }
        catch (IOException)
        {
            // Legate closed after the delay, or the test closed: the rest is not wanted.
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private static async Task<string> ReadResponseAsync(NetworkStream stream, string bodyEnd)
    {
        var received = new StringBuilder();
        var buffer = new byte[4096];
        while (!EndsWith(received, bodyEnd))
        {
            var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            if (read == 0)
            {
                break;
            }

            received.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        return received.ToString();
    }

    /// <summary>Reads head and content-length body; stops early (short) at EOF or a reset.</summary>
    private static async Task<string> ReadLengthDelimitedResponseAsync(NetworkStream stream)
    {
        var received = new List<byte>();
        var buffer = new byte[8192];
        var total = -1;
        try
        {
            while (total < 0 || received.Count < total)
            {
                var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
                if (read == 0)
                {
                    break;
                }

                received.AddRange(buffer.AsSpan(0, read));
                if (total < 0)
                {
                    var text = Encoding.ASCII.GetString(received.ToArray());
                    var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                    if (headEnd >= 0)
                    {
                        var lengthAt = text.IndexOf("content-length: ", StringComparison.OrdinalIgnoreCase) + 16;
                        total = headEnd + 4 + int.Parse(text[lengthAt..text.IndexOf('\r', lengthAt)], System.Globalization.CultureInfo.InvariantCulture);
                    }
                }
            }
        }
        catch (IOException)
        {
            // Reset by the peer: what arrived is what there is.
        }

        return Encoding.ASCII.GetString(received.ToArray());
    }

    private static bool EndsWith(StringBuilder text, string end)
    {
        if (text.Length < end.Length)
        {
            return false;
        }

        for (var i = 0; i < end.Length; i++)
        {
            if (text[text.Length - end.Length + i] != end[i])
            {
                return false;
            }
        }

        return true;
    }
}
