using System.Collections.Concurrent;
using Legate.Tests.Harness;
using static Legate.Tests.Tls.TlsTestConfigs;

namespace Legate.Tests.Tls;

/// <summary>Secrets: static_resources.secrets by name, file-based SDS, and rotation under load.</summary>
public sealed class SecretsTests : IDisposable
{
    private readonly TestCertificates _pki = new();

    public void Dispose() => _pki.Dispose();

    [Fact]
    public async Task StaticSecretsAreReferencedByName()
    {
        var server = _pki.Leaf("server", new() { Dns = ["localhost"], Ecdsa = true });
        var client = _pki.Leaf("client", new() { Client = true, Ecdsa = true, Uris = ["spiffe://legate.test/client"] });
        var secrets = $$"""
              secrets:
              - name: server_cert
                tls_certificate:
                  certificate_chain: {filename: "{{server.ChainPath}}" }
                  private_key: {filename: "{{server.KeyPath}}" }
              - name: client_ca
                validation_context:
                  trusted_ca: {filename: "{{_pki.RootPath}}" }
                  match_typed_subject_alt_names: [{san_type: URI, matcher: {exact: "spiffe://legate.test/client" } }]
            """;
        var tls = $"{{\"@type\": \"{DownstreamType}\", require_client_certificate: true, common_tls_context: {{tls_certificate_sds_secret_configs: [{{name: server_cert}}], validation_context_sds_secret_config: {{name: client_ca}}}}}}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(tls), staticExtra: secrets));
        var endpoint = legate.ListenerEndpoint("tls");

        var accepted = await TestTls.GetAsync(endpoint, new() { ClientCertificate = client.WithKey() });
        var refused = await TestTls.GetAsync(endpoint, new());

        Assert.Equal(200, accepted.Status);
        Assert.Equal(server.Certificate.Thumbprint, accepted.ServerCertificate!.Thumbprint);
        Assert.Equal(0, refused.Status);
    }

    [Fact]
    public async Task AnUnknownSecretNameIsAConfigError()
    {
        var tls = $"{{\"@type\": \"{DownstreamType}\", common_tls_context: {{tls_certificate_sds_secret_configs: [{{name: missing}}]}}}}";
        var ex = await Assert.ThrowsAsync<Legate.Config.ConfigException>(() => InProcessLegate.StartAsync(Bootstrap(Chain(tls))));
        Assert.Contains("tls_certificate_sds_secret_configs[0].name", ex.Message);
        Assert.Contains("Unknown static secret: missing", ex.Message);
    }

    [Fact]
    public async Task FileSdsRotationServesNewCertificatesWithoutAFailedHandshakeOrADroppedConnection()
    {
        const int Rotations = 10;
        var sdsPath = Path.Combine(_pki.Directory, "sds.yaml");
        var current = _pki.Leaf("rot-0", new() { Dns = ["localhost"], Ecdsa = true });
        current.WriteSdsFile(sdsPath);
        var tls = $"{{\"@type\": \"{DownstreamType}\", common_tls_context: {{tls_certificate_sds_secret_configs: [{{name: server_cert, sds_config: {{path_config_source: {{path: \"{sdsPath}\"}}}}}}]}}}}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(tls)));
        var endpoint = legate.ListenerEndpoint("tls");

        // One connection opened before any rotation must keep working after all of them.
        await using var established = await TestTls.ConnectAsync(endpoint, new());
        Assert.Equal(current.Certificate.Thumbprint, established.RemoteCertificate!.GetCertHashString());
        await KeepAliveRequestAsync(established);

        using var stop = new CancellationTokenSource();
        var failures = new ConcurrentQueue<string>();
        var handshakes = 0;
        var loops = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var outcome = await TestTls.GetAsync(endpoint, new());
                Interlocked.Increment(ref handshakes);
                if (outcome.Status != 200)
                {
                    failures.Enqueue(outcome.Error ?? outcome.Status.ToString(System.Globalization.CultureInfo.InvariantCulture));
                }
            }
        })).ToArray();

        for (var i = 1; i <= Rotations; i++)
        {
            var next = _pki.Leaf("rot-" + i, new() { Dns = ["localhost"], Ecdsa = true });
            next.WriteSdsFile(sdsPath);
            await WaitUntilServedAsync(endpoint, next);
        }

        await stop.CancelAsync();
        await Task.WhenAll(loops);
        await KeepAliveRequestAsync(established);

        Assert.Empty(failures);
        Assert.True(handshakes > 0);
        Assert.True(legate.Server.Stats.Counter("sds.server_cert.update_success").Value >= Rotations);
    }

    /// <summary>
    /// Kubernetes' way of rotating a mounted secret: the files are reached through a <c>..data</c>
    /// symlink that is swapped atomically for one to a new directory, and the SDS file itself
    /// never changes. With <c>watched_directory</c> on that directory the swap is seen, the secret
    /// is read again through the new link, and new handshakes get the new certificate.
    /// </summary>
    [Fact]
    public async Task AWatchedDirectorySymlinkSwapRotatesTheCertificate()
    {
        var mount = Path.Combine(_pki.Directory, "mount");
        Directory.CreateDirectory(mount);
        var first = _pki.Leaf("k8s-1", new() { Dns = ["localhost"], Ecdsa = true });
        Publish(mount, "..v1", first);
        Directory.CreateSymbolicLink(Path.Combine(mount, "..data"), "..v1");
        File.CreateSymbolicLink(Path.Combine(mount, "tls.crt"), Path.Combine("..data", "tls.crt"));
        File.CreateSymbolicLink(Path.Combine(mount, "tls.key"), Path.Combine("..data", "tls.key"));

        var sdsPath = Path.Combine(_pki.Directory, "sds.yaml");
        File.WriteAllText(sdsPath, $$"""
            resources:
            - "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
              name: server_cert
              tls_certificate:
                certificate_chain: { filename: "{{Path.Combine(mount, "tls.crt")}}" }
                private_key: { filename: "{{Path.Combine(mount, "tls.key")}}" }
            """);
        var tls = $"{{\"@type\": \"{DownstreamType}\", common_tls_context: {{tls_certificate_sds_secret_configs: [{{name: server_cert, sds_config: {{path_config_source: {{path: \"{sdsPath}\", watched_directory: {{path: \"{mount}\"}}}}}}}}]}}}}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(tls)));
        var endpoint = legate.ListenerEndpoint("tls");
        Assert.Equal(first.Certificate.Thumbprint, (await TestTls.GetAsync(endpoint, new())).ServerCertificate!.Thumbprint);

        // The kubelet's swap: a new directory, a temporary link to it, renamed over ..data.
        var second = _pki.Leaf("k8s-2", new() { Dns = ["localhost"], Ecdsa = true });
        Publish(mount, "..v2", second);
        Directory.CreateSymbolicLink(Path.Combine(mount, "..data_tmp"), "..v2");
        // rename(2) of the link itself (.NET's File.Move follows a link to a directory).
        var swap = await ExternalTool.RunAsync("mv", ["-T", Path.Combine(mount, "..data_tmp"), Path.Combine(mount, "..data")]);
        Assert.Equal(0, swap.ExitCode);

        await WaitUntilServedAsync(endpoint, second);
        Assert.True(legate.Server.Stats.Counter("sds.server_cert.update_success").Value >= 1);
    }

    private static void Publish(string mount, string version, TestCertificates.Issued certificate)
    {
        var directory = Path.Combine(mount, version);
        Directory.CreateDirectory(directory);
        File.Copy(certificate.ChainPath!, Path.Combine(directory, "tls.crt"));
        File.Copy(certificate.KeyPath!, Path.Combine(directory, "tls.key"));
    }

    [Fact]
    public async Task ABrokenUpdateKeepsThePreviousCertificate()
    {
        var sdsPath = Path.Combine(_pki.Directory, "sds.yaml");
        var first = _pki.Leaf("first", new() { Dns = ["localhost"], Ecdsa = true });
        first.WriteSdsFile(sdsPath);
        var tls = $"{{\"@type\": \"{DownstreamType}\", common_tls_context: {{tls_certificate_sds_secret_configs: [{{name: server_cert, sds_config: {{path_config_source: {{path: \"{sdsPath}\"}}}}}}]}}}}";
        await using var legate = await InProcessLegate.StartAsync(Bootstrap(Chain(tls)));
        var endpoint = legate.ListenerEndpoint("tls");

        var temp = sdsPath + ".tmp";
        File.WriteAllText(temp, "resources: [ {\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret, name: server_cert, tls_certificate: {certificate_chain: {inline_string: nope}, private_key: {inline_string: nope}}} ]\n");
        File.Move(temp, sdsPath, overwrite: true);
        await legate.Logs.WaitForAsync("secret .server_cert.: rejected an update", TimeSpan.FromSeconds(30));

        var outcome = await TestTls.GetAsync(endpoint, new());
        Assert.Equal(200, outcome.Status);
        Assert.Equal(first.Certificate.Thumbprint, outcome.ServerCertificate!.Thumbprint);
        Assert.Equal(1, legate.Server.Stats.Counter("sds.server_cert.update_rejected").Value);
    }

    private static async Task WaitUntilServedAsync(System.Net.IPEndPoint endpoint, TestCertificates.Issued expected)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            await using (var ssl = await TestTls.ConnectAsync(endpoint, new()))
            {
                if (ssl.RemoteCertificate!.GetCertHashString() == expected.Certificate.Thumbprint)
                {
                    return;
                }
            }

            Assert.True(DateTime.UtcNow < deadline, "the rotated certificate was never served");
        }
    }

    private static async Task KeepAliveRequestAsync(System.Net.Security.SslStream ssl)
    {
        await ssl.WriteAsync("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"u8.ToArray());
        var buffer = new byte[4096];
        var text = string.Empty;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!text.EndsWith("tls ok", StringComparison.Ordinal))
        {
            var n = await ssl.ReadAsync(buffer, timeout.Token);
            Assert.True(n > 0, "the established connection was closed");
            text += System.Text.Encoding.ASCII.GetString(buffer, 0, n);
        }

        Assert.StartsWith("HTTP/1.1 200", text);
    }
}
