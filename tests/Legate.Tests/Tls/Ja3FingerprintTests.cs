using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Legate.Tests.AccessLog;
using Legate.Tests.Harness;

namespace Legate.Tests.Tls;

/// <summary>
/// tls_inspector <c>enable_ja3_fingerprinting</c> → <c>%TLS_JA3_FINGERPRINT%</c>. Real clients (.NET's
/// SslStream, <c>openssl s_client</c>) connect through a relay in the test that records their
/// ClientHello; the expected hash is computed here from those bytes, by this file's own parser.
/// </summary>
public sealed class Ja3FingerprintTests : IDisposable
{
    private readonly TestCertificates _pki = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("legate-ja3-").FullName;

    public void Dispose()
    {
        _pki.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private string Config(string hcmLog, string listenerLog, bool enabled = true)
    {
        var leaf = _pki.Leaf("server", new() { Dns = ["ja3.test"], Ecdsa = true });
        return TestConfigs.Admin() + $$"""
            static_resources:
              listeners:
              - name: tls
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                listener_filters:
                - name: envoy.filters.listener.tls_inspector
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector, enable_ja3_fingerprinting: {{(enabled ? "true" : "false")}}}
                access_log:
                - name: envoy.access_loggers.file
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: "{{listenerLog}}", log_format: {text_format_source: {inline_string: "%TLS_JA3_FINGERPRINT%\n"} } }
                filter_chains:
                - transport_socket:
                    name: envoy.transport_sockets.tls
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
                      common_tls_context:
                        tls_certificates: [{ certificate_chain: { filename: "{{leaf.ChainPath}}" }, private_key: { filename: "{{leaf.KeyPath}}" } }]
                  filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: tls
                      access_log:
                      - name: envoy.access_loggers.file
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: "{{hcmLog}}", log_format: {text_format_source: {inline_string: "%TLS_JA3_FINGERPRINT%\n"} } }
                      route_config:
                        virtual_hosts:
                        - name: all
                          domains: ["*"]
                          routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "ok" } } }]
                      http_filters: [{ name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router} }]
            """;
    }

    [Fact]
    public async Task DotNetClientHelloHashIsLoggedForTheStreamAndTheConnection()
    {
        var hcmLog = Path.Combine(_dir, "hcm.log");
        var listenerLog = Path.Combine(_dir, "listener.log");
        await using var legate = await InProcessLegate.StartAsync(Config(hcmLog, listenerLog));
        using var relay = new RecordingRelay(legate.ListenerEndpoint("tls"));

        using (var client = new TcpClient())
        {
            await client.ConnectAsync(relay.Endpoint);
            await using var ssl = new SslStream(client.GetStream());
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "ja3.test",
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
                ApplicationProtocols = [SslApplicationProtocol.Http11],
            });
            await ssl.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"u8.ToArray());
            Assert.EndsWith("ok", await new StreamReader(ssl).ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        }

        var (text, expected) = ExpectedJa3(await relay.ClientBytesAsync());
        Assert.Matches(@"^\d+,[\d-]+,[\d-]+,[\d-]*,[\d-]*$", text);
        Assert.Equal([expected], await AccessLogTests.WaitForLinesAsync(hcmLog, 1));
        Assert.Equal([expected], await AccessLogTests.WaitForLinesAsync(listenerLog, 1));
    }

    [ToolFact("openssl")]
    public async Task OpensslClientHelloHash()
    {
        var hcmLog = Path.Combine(_dir, "hcm.log");
        var listenerLog = Path.Combine(_dir, "listener.log");
        await using var legate = await InProcessLegate.StartAsync(Config(hcmLog, listenerLog));
        using var relay = new RecordingRelay(legate.ListenerEndpoint("tls"));

        var result = await ExternalTool.RunAsync("openssl", ["s_client", "-connect", "127.0.0.1:" + relay.Endpoint.Port.ToString(CultureInfo.InvariantCulture), "-servername", "ja3.test", "-alpn", "http/1.1"], stdin: string.Empty);
        Assert.Contains("BEGIN CERTIFICATE", result.All);

        var (_, expected) = ExpectedJa3(await relay.ClientBytesAsync());
        Assert.Equal([expected], await AccessLogTests.WaitForLinesAsync(listenerLog, 1));
    }

    [Fact]
    public async Task WithoutTheOptionTheFingerprintIsEmpty()
    {
        var hcmLog = Path.Combine(_dir, "hcm.log");
        var listenerLog = Path.Combine(_dir, "listener.log");
        await using var legate = await InProcessLegate.StartAsync(Config(hcmLog, listenerLog, enabled: false));
        using (var client = new TcpClient())
        {
            await client.ConnectAsync(legate.ListenerEndpoint("tls"));
            await using var ssl = new SslStream(client.GetStream());
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "ja3.test", RemoteCertificateValidationCallback = (_, _, _, _) => true });
        }

        Assert.Equal(["-"], await AccessLogTests.WaitForLinesAsync(listenerLog, 1));
    }

    /// <summary>JA3 text and MD5 of the ClientHello at the start of <paramref name="bytes"/> (one or more TLS records).</summary>
    private static (string Text, string Hash) ExpectedJa3(byte[] bytes)
    {
        // Reassemble the handshake payload from the records.
        var handshake = new List<byte>();
        for (var at = 0; at + 5 <= bytes.Length && bytes[at] == 22;)
        {
            var length = (bytes[at + 3] << 8) | bytes[at + 4];
            handshake.AddRange(bytes.Skip(at + 5).Take(length));
            at += 5 + length;
        }

        Assert.Equal(1, handshake[0]); // client_hello
        var body = handshake.Skip(4).Take((handshake[1] << 16) | (handshake[2] << 8) | handshake[3]).ToArray();
        var position = 0;
        int U8() => body[position++];
        int U16() => (body[position++] << 8) | body[position++];
        static bool Grease(int v) => (v & 0x0F0F) == 0x0A0A && (v >> 8) == (v & 0xFF);

        var version = U16();
        position += 32;
        var sessionIdLength = U8();
        position += sessionIdLength;
        var ciphers = new List<int>();
        for (var end = U16() + position; position < end;)
        {
            ciphers.Add(U16());
        }

        var compressionLength = U8();
        position += compressionLength;
        var extensions = new List<int>();
        var groups = new List<int>();
        var formats = new List<int>();
        if (position < body.Length)
        {
            for (var end = U16() + position; position < end;)
            {
                var type = U16();
                var length = U16();
                var next = position + length;
                extensions.Add(type);
                if (type == 10)
                {
                    for (var listEnd = U16() + position; position < listEnd;)
                    {
                        groups.Add(U16());
                    }
                }
                else if (type == 11)
                {
                    for (var listEnd = U8() + position; position < listEnd;)
                    {
                        formats.Add(U8());
                    }
                }

                position = next;
            }
        }

        static string Join(IEnumerable<int> values) => string.Join("-", values.Where(v => !Grease(v)));
        var text = $"{version},{Join(ciphers)},{Join(extensions)},{Join(groups)},{string.Join("-", formats)}";
        return (text, Convert.ToHexStringLower(MD5.HashData(Encoding.ASCII.GetBytes(text))));
    }

    /// <summary>A TCP relay to <c>target</c> that records what its first client sends.</summary>
    private sealed class RecordingRelay : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly IPEndPoint _target;
        private readonly MemoryStream _fromClient = new();
        private readonly TaskCompletionSource _firstBytes = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public RecordingRelay(IPEndPoint target)
        {
            _target = target;
            _listener.Start();
            _ = RunAsync();
        }

        public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndpoint;

        /// <summary>The client's bytes once a whole first TLS record arrived.</summary>
        public async Task<byte[]> ClientBytesAsync()
        {
            await _firstBytes.Task.WaitAsync(TimeSpan.FromSeconds(30));
            lock (_fromClient)
            {
                return _fromClient.ToArray();
            }
        }

        public void Dispose() => _listener.Stop();

        private async Task RunAsync()
        {
            try
            {
                using var client = await _listener.AcceptTcpClientAsync();
                using var server = new TcpClient();
                await server.ConnectAsync(_target);
                var up = PumpAsync(client.GetStream(), server.GetStream(), record: true, () => server.Client.Shutdown(SocketShutdown.Send));
                var down = PumpAsync(server.GetStream(), client.GetStream(), record: false, () => client.Client.Shutdown(SocketShutdown.Send));
                await Task.WhenAll(up, down);
            }
            catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException)
            {
            }
        }

        private async Task PumpAsync(NetworkStream from, NetworkStream to, bool record, Action halfClose)
        {
            var buffer = new byte[16384];
            int n;
            while ((n = await from.ReadAsync(buffer)) > 0)
            {
                if (record)
                {
                    lock (_fromClient)
                    {
                        _fromClient.Write(buffer, 0, n);
                        var data = _fromClient.GetBuffer();
                        if (_fromClient.Length >= 5 && _fromClient.Length >= 5 + ((data[3] << 8) | data[4]))
                        {
                            _firstBytes.TrySetResult();
                        }
                    }
                }

                await to.WriteAsync(buffer.AsMemory(0, n));
            }

            halfClose();
        }
    }
}
