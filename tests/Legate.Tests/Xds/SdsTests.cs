using System.Net;
using System.Net.Security;
using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Tests.Harness;
using static Legate.Tests.Xds.XdsTestResources;

namespace Legate.Tests.Xds;

/// <summary>
/// SDS over ADS (state of the world and Delta) against the tests' scripted management server, with
/// real TLS clients: a listener warms until its certificate arrives, a new Secret rotates the
/// certificate for new handshakes while established connections stay, an invalid Secret is NACKed
/// and the previous one keeps serving, a validation context from SDS decides which client
/// certificates pass, and initial_fetch_timeout lets a listener start without its secret.
/// </summary>
public sealed class SdsTests : IDisposable
{
    private readonly TestCertificates _pki = new();

    public void Dispose() => _pki.Dispose();

    [Theory]
    [InlineData("AGGREGATED_GRPC")]
    [InlineData("AGGREGATED_DELTA_GRPC")]
    public async Task AListenerWarmsUntilItsSecretArrivesThenServesTls(string apiType)
    {
        var delta = apiType.Contains("DELTA", StringComparison.Ordinal);
        await using var xds = await ScriptedXdsServer.StartAsync();
        // Delta answers only with resources: give CDS and LDS one each so init does not wait for the timeout.
        xds.Set(ClusterType, "c1", Placeholder());
        xds.Set(ListenerType, "l1", InlineListener("plain", Routes("plain-routes", "placeholder")));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port, apiType));

        xds.Set(ListenerType, "l2", InlineListener("plain", Routes("plain-routes", "placeholder")), TlsListener("tls", "server_cert"));
        if (delta)
        {
            await xds.WaitForDeltaRequestAsync(r => r.TypeUrl == SecretType && r.ResourceNamesSubscribe.Contains("server_cert"));
        }
        else
        {
            await xds.WaitForRequestAsync(r => r.TypeUrl == SecretType && r.ResourceNames.SequenceEqual(["server_cert"]));
        }

        // No secret yet: the listener warms and its port is not open.
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "listener_manager.total_listeners_warming") == 1, "the listener to warm");
        Assert.Null(legate.Server.Listeners.Find("tls"));
        using var warmingResponse = await legate.Http.GetAsync(new Uri(legate.AdminUri, "/config_dump?resource=dynamic_warming_secrets"));
        var warmingDump = await warmingResponse.Content.ReadAsStringAsync();
        Assert.True(warmingResponse.IsSuccessStatusCode, warmingDump + string.Join("\n", legate.Logs.Lines));
        Assert.Contains("server_cert", warmingDump);

        var certificate = _pki.Leaf("sds-first", new() { Dns = ["localhost"], Ecdsa = true });
        xds.Set(SecretType, "s1", CertificateSecret("server_cert", certificate));
        await XdsWait.UntilAsync(() => legate.Server.Listeners.Find("tls")?.BoundEndpoint is not null, "the listener to start after its secret");

        var outcome = await TestTls.GetAsync(legate.ListenerEndpoint("tls"), new() { TrustedRoot = _pki.Root.Certificate });
        Assert.Equal(200, outcome.Status);
        Assert.Equal(certificate.Certificate.Thumbprint, outcome.ServerCertificate!.Thumbprint);
        if (!delta)
        {
            var ack = await xds.WaitForRequestAsync(r => r.TypeUrl == SecretType && r.VersionInfo == "s1" && r.ResponseNonce.Length > 0);
            Assert.Null(ack.ErrorDetail);
        }

        Assert.Equal(1, XdsWait.Counter(legate, "sds.server_cert.update_success"));
        Assert.Equal(0, XdsWait.Gauge(legate, "listener_manager.total_listeners_warming"));

        // config_dump: the secret is active, with its version, and its private key never printed.
        var dump = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/config_dump?resource=dynamic_active_secrets"));
        Assert.Contains("\"name\": \"server_cert\"", dump);
        Assert.Contains("[redacted]", dump);
        Assert.Contains("BEGIN CERTIFICATE", dump);
        Assert.DoesNotContain("PRIVATE KEY", dump);
        if (!delta)
        {
            Assert.Contains("\"version_info\": \"s1\"", dump);
        }
    }

    [Fact]
    public async Task ANewSecretRotatesTheCertificateForNewClientsWithoutDroppingEstablishedConnections()
    {
        var first = _pki.Leaf("rotate-0", new() { Dns = ["localhost"], Ecdsa = true });
        await using var xds = await ScriptedXdsServer.StartAsync();
        await using var legate = await StartServingAsync(xds, CertificateSecret("server_cert", first));
        var endpoint = legate.ListenerEndpoint("tls");

        await using var established = await TestTls.ConnectAsync(endpoint, new());
        Assert.Equal(first.Certificate.Thumbprint, established.RemoteCertificate!.GetCertHashString());
        await KeepAliveRequestAsync(established);

        var next = first;
        for (var i = 1; i <= 3; i++)
        {
            next = _pki.Leaf("rotate-" + i, new() { Dns = ["localhost"], Ecdsa = i % 2 == 0 });
            xds.Set(SecretType, "s" + (i + 1), CertificateSecret("server_cert", next));
            await WaitUntilServedAsync(endpoint, next);
            await xds.WaitForRequestAsync(r => r.TypeUrl == SecretType && r.VersionInfo == "s" + (i + 1) && r.ErrorDetail is null && r.ResponseNonce.Length > 0);
        }

        // The connection made before every rotation still works, on its original session.
        await KeepAliveRequestAsync(established);
        Assert.Equal(4, XdsWait.Counter(legate, "sds.server_cert.update_success"));
        // /certs shows what new handshakes use.
        var certs = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/certs"));
        Assert.Contains(next.Certificate.SerialNumber.ToLowerInvariant(), certs);
        Assert.DoesNotContain(first.Certificate.SerialNumber.ToLowerInvariant(), certs);
    }

    [Fact]
    public async Task ASecretNamingFilesIsReloadedWhenTheFilesRotate()
    {
        var directory = Directory.CreateTempSubdirectory("legate-sds-files-").FullName;
        try
        {
            var first = _pki.Leaf("files-0", new() { Dns = ["localhost"], Ecdsa = true });
            var certFile = Path.Combine(directory, "cert.pem");
            var keyFile = Path.Combine(directory, "key.pem");
            WriteAtomically(certFile, first.CertificatePem);
            WriteAtomically(keyFile, first.KeyPem);
            var secret = new Secret
            {
                Name = "server_cert",
                TlsCertificate = new TlsCertificate { CertificateChain = new DataSource { Filename = certFile }, PrivateKey = new DataSource { Filename = keyFile } },
            };
            await using var xds = await ScriptedXdsServer.StartAsync();
            await using var legate = await StartServingAsync(xds, secret);
            var endpoint = legate.ListenerEndpoint("tls");
            await WaitUntilServedAsync(endpoint, first);

            // The files are replaced on disk (no SDS update): new handshakes get the new certificate.
            var second = _pki.Leaf("files-1", new() { Dns = ["localhost"] });
            WriteAtomically(keyFile, second.KeyPem);
            WriteAtomically(certFile, second.CertificatePem);
            await WaitUntilServedAsync(endpoint, second);

            // A rotation that does not load keeps the certificate in force and is counted.
            var failedBefore = XdsWait.Counter(legate, "sds.server_cert.key_rotation_failed");
            WriteAtomically(certFile, "not a certificate");
            await XdsWait.UntilAsync(() => XdsWait.Counter(legate, "sds.server_cert.key_rotation_failed") > failedBefore, "the failed rotation to be counted");
            await WaitUntilServedAsync(endpoint, second);
            Assert.Equal(1, XdsWait.Counter(legate, "sds.server_cert.update_success"));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static void WriteAtomically(string path, string text)
    {
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, text);
        File.Move(temporary, path, overwrite: true);
    }

    [Fact]
    public async Task AnInvalidSecretIsNackedWithItsNameAndReasonAndThePreviousCertificateKeepsServing()
    {
        var good = _pki.Leaf("good", new() { Dns = ["localhost"], Ecdsa = true });
        var other = _pki.Leaf("other", new() { Dns = ["localhost"], Ecdsa = true });
        await using var xds = await ScriptedXdsServer.StartAsync();
        await using var legate = await StartServingAsync(xds, CertificateSecret("server_cert", good));
        var endpoint = legate.ListenerEndpoint("tls");

        // A private key that does not belong to the certificate.
        var mismatched = CertificateSecret("server_cert", other);
        mismatched.TlsCertificate.PrivateKey = new DataSource { InlineString = good.KeyPem };
        xds.Set(SecretType, "s-mismatch", mismatched);
        var nack = await xds.WaitForRequestAsync(r => r.TypeUrl == SecretType && r.ErrorDetail is not null);
        Assert.Equal("s1", nack.VersionInfo);
        Assert.Contains("server_cert", nack.ErrorDetail.Message);
        Assert.Contains("tls_certificate.private_key", nack.ErrorDetail.Message);

        var outcome = await TestTls.GetAsync(endpoint, new() { TrustedRoot = _pki.Root.Certificate });
        Assert.Equal(200, outcome.Status);
        Assert.Equal(good.Certificate.Thumbprint, outcome.ServerCertificate!.Thumbprint);

        // A chain that is not PEM at all.
        var garbage = CertificateSecret("server_cert", other);
        garbage.TlsCertificate.CertificateChain = new DataSource { InlineString = "not a certificate" };
        xds.Set(SecretType, "s-garbage", garbage);
        var second = await xds.WaitForRequestAsync(r => r.TypeUrl == SecretType && r.ErrorDetail is not null && r.ErrorDetail.Message != nack.ErrorDetail.Message);
        Assert.Equal("s1", second.VersionInfo);
        Assert.Contains("tls_certificate.certificate_chain", second.ErrorDetail.Message);
        Assert.Contains("server_cert", second.ErrorDetail.Message);

        outcome = await TestTls.GetAsync(endpoint, new() { TrustedRoot = _pki.Root.Certificate });
        Assert.Equal(good.Certificate.Thumbprint, outcome.ServerCertificate!.Thumbprint);
        Assert.Equal(1, XdsWait.Counter(legate, "sds.server_cert.update_success"));
        Assert.Equal(2, XdsWait.Counter(legate, "sds.update_rejected"));
        var dump = await legate.Http.GetStringAsync(new Uri(legate.AdminUri, "/config_dump?resource=dynamic_active_secrets"));
        Assert.Contains("error_state", dump);

        // A good secret afterwards is taken.
        xds.Set(SecretType, "s2", CertificateSecret("server_cert", other));
        await WaitUntilServedAsync(endpoint, other);
    }

    [Fact]
    public async Task AValidationContextFromSdsDecidesWhichClientCertificatesAreAcceptedAndRotates()
    {
        using var otherPki = new TestCertificates("Other");
        var server = _pki.Leaf("mtls-server", new() { Dns = ["localhost"], Ecdsa = true });
        var client = _pki.Leaf("mtls-client", new() { Client = true, Ecdsa = true, Uris = ["spiffe://legate.test/client"] });
        var otherClient = otherPki.Leaf("other-client", new() { Client = true, Ecdsa = true, Uris = ["spiffe://legate.test/client"] });
        await using var xds = await ScriptedXdsServer.StartAsync();
        await using var legate = await StartServingAsync(xds, CertificateSecret("server_cert", server), CaSecret("client_ca", _pki.Root.CertificatePem), caSecret: "client_ca");
        var endpoint = legate.ListenerEndpoint("tls");

        Assert.Equal(200, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = client.WithKey() })).Status);
        Assert.Equal(0, (await TestTls.GetAsync(endpoint, new())).Status);
        Assert.Equal(0, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = otherClient.WithKey() })).Status);

        // The CA rotates to the other PKI: its clients pass from now on, the first PKI's do not.
        xds.Set(SecretType, "s2", CertificateSecret("server_cert", server), CaSecret("client_ca", otherPki.Root.CertificatePem));
        await XdsWait.UntilAsync(async () => (await TestTls.GetAsync(endpoint, new() { ClientCertificate = otherClient.WithKey() })).Status == 200, "the rotated CA to accept its client");
        Assert.Equal(0, (await TestTls.GetAsync(endpoint, new() { ClientCertificate = client.WithKey() })).Status);
        Assert.True(XdsWait.Counter(legate, "sds.client_ca.update_success") >= 2);
    }

    [Fact]
    public async Task InitialFetchTimeoutStartsTheListenerWithoutItsSecretAndItsConnectionsAreRefusedUntilItArrives()
    {
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1");
        xds.Set(ListenerType, "l1", TlsListener("tls", "late_cert", initialFetchTimeout: TimeSpan.FromMilliseconds(500)));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        await XdsWait.UntilAsync(() => legate.Server.Listeners.Find("tls")?.BoundEndpoint is not null, "the listener to start at initial_fetch_timeout");
        var endpoint = legate.ListenerEndpoint("tls");
        Assert.Equal(1, XdsWait.Counter(legate, "sds.late_cert.init_fetch_timeout"));

        var refused = await TestTls.GetAsync(endpoint, new());
        Assert.False(refused.Handshake);
        Assert.Equal(1, XdsWait.Counter(legate, $"listener.127.0.0.1_{endpoint.Port}.server_ssl_socket_factory.downstream_context_secrets_not_ready"));

        var certificate = _pki.Leaf("late", new() { Dns = ["localhost"], Ecdsa = true });
        xds.Set(SecretType, "s1", CertificateSecret("late_cert", certificate));
        await WaitUntilServedAsync(endpoint, certificate);
    }

    [Fact]
    public async Task AClusterWarmsUntilItsClientCertificateAndCaArriveThenOriginatesMutualTls()
    {
        var serverCert = _pki.Leaf("upstream-server", new() { Dns = ["upstream.test"], Ecdsa = true });
        var clientCert = _pki.Leaf("upstream-client", new() { Client = true, Ecdsa = true, Uris = ["spiffe://legate.test/proxy"] });
        var tls = new UpstreamTls(serverCert.WithKey()) { RequireClientCertificate = true, ClientRoot = _pki.Root.Certificate };
        await using var upstream = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("over mtls")), tls: tls);
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1");
        xds.Set(ListenerType, "l1", RdsListener("ingress", "main"));
        xds.Set(RouteType, "r1", Routes("main", "secure"));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));

        // The cluster's client certificate and CA come from SDS: it warms (and is not used) until both arrive.
        var cluster = new Envoy.Config.Cluster.V3.Cluster
        {
            Name = "secure",
            Type = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType.Static,
            ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(5)),
            LoadAssignment = Endpoints("secure", upstream.Port),
        };
        var common = new CommonTlsContext();
        common.TlsCertificateSdsSecretConfigs.Add(new SdsSecretConfig { Name = "client_cert", SdsConfig = Ads() });
        common.ValidationContextSdsSecretConfig = new SdsSecretConfig { Name = "upstream_ca", SdsConfig = Ads() };
        cluster.TransportSocket = new TransportSocket
        {
            Name = "envoy.transport_sockets.tls",
            TypedConfig = Any.Pack(new UpstreamTlsContext { CommonTlsContext = common, Sni = "upstream.test" }),
        };
        xds.Set(ClusterType, "c2", cluster);
        await xds.WaitForRequestAsync(r => r.TypeUrl == SecretType && r.ResourceNames.Contains("client_cert") && r.ResourceNames.Contains("upstream_ca"));
        await XdsWait.UntilAsync(() => XdsWait.Gauge(legate, "cluster_manager.warming_clusters") == 1, "the cluster to warm");
        Assert.Null(legate.Server.Clusters.Find("secure"));

        xds.Set(SecretType, "s1", CertificateSecret("client_cert", clientCert), CaSecret("upstream_ca", _pki.Root.CertificatePem));
        await XdsWait.UntilAsync(() => legate.Server.Clusters.Find("secure") is not null, "the cluster to become active");
        Assert.Equal("over mtls", await XdsWait.GetAsync(legate, "ingress"));
        var handshake = Assert.Single(tls.Handshakes);
        Assert.Equal("upstream.test", handshake.ServerName);
        Assert.Equal(clientCert.Certificate.Thumbprint, handshake.ClientCertificate!.Thumbprint);
    }

    [Theory]
    [InlineData("AGGREGATED_GRPC")]
    [InlineData("AGGREGATED_DELTA_GRPC")]
    public async Task ASecretNoListenerUsesAnyMoreLeavesTheSubscription(string apiType)
    {
        var delta = apiType.Contains("DELTA", StringComparison.Ordinal);
        var first = _pki.Leaf("sds-old", new() { Dns = ["localhost"], Ecdsa = true });
        var second = _pki.Leaf("sds-new", new() { Dns = ["localhost"], Ecdsa = true });
        await using var xds = await ScriptedXdsServer.StartAsync();
        xds.Set(ClusterType, "c1", Placeholder());
        xds.Set(SecretType, "s1", CertificateSecret("server_cert", first), CertificateSecret("other_cert", second));
        xds.Set(ListenerType, "l1", TlsListener("tls", "server_cert"));
        await using var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port, apiType), "--drain-time-s", "1");
        await XdsWait.UntilAsync(() => legate.Server.Listeners.Find("tls")?.BoundEndpoint is not null, "the TLS listener");

        // Secret requests (SotW) or unsubscriptions (Delta) sent after mark.
        async Task ExpectAfter(int mark, string[] sotwNames, string deltaUnsubscribed, string what)
        {
            if (delta)
            {
                await XdsWait.UntilAsync(() => xds.DeltaRequests.Skip(mark).Any(r => r.TypeUrl == SecretType && r.ResourceNamesUnsubscribe.Contains(deltaUnsubscribed)), what);
            }
            else
            {
                await XdsWait.UntilAsync(() => xds.Requests.Skip(mark).Any(r => r.TypeUrl == SecretType && r.ResourceNames.SequenceEqual(sotwNames)), what);
            }
        }

        // The listener changes to another certificate: once the new version is in force, server_cert
        // has no user left and leaves the subscription.
        var mark = delta ? xds.DeltaRequests.Count : xds.Requests.Count;
        xds.Set(ListenerType, "l2", TlsListener("tls", "other_cert"));
        await ExpectAfter(mark, ["other_cert"], "server_cert", "server_cert to be unsubscribed");
        var outcome = await TestTls.GetAsync(legate.ListenerEndpoint("tls"), new() { TrustedRoot = _pki.Root.Certificate });
        Assert.Equal(second.Certificate.Thumbprint, outcome.ServerCertificate!.Thumbprint);
        if (delta)
        {
            Assert.DoesNotContain(xds.DeltaRequests.Skip(mark), r => r.TypeUrl == SecretType && r.ResourceNamesUnsubscribe.Contains("other_cert"));
        }

        // The listener is removed: once drained, its secret goes too.
        mark = delta ? xds.DeltaRequests.Count : xds.Requests.Count;
        xds.Set(ListenerType, "l3");
        await ExpectAfter(mark, [], "other_cert", "other_cert to be unsubscribed");
        Assert.Null(legate.Server.Listeners.Find("tls"));
    }

    /// <summary>Starts Legate on the scripted server with a TLS listener "tls" whose secrets are <paramref name="secrets"/> (version s1), serving.</summary>
    private static async Task<InProcessLegate> StartServingAsync(ScriptedXdsServer xds, Secret certificate, Secret? ca = null, string? caSecret = null)
    {
        xds.Set(ClusterType, "c1");
        xds.Set(SecretType, "s1", ca is null ? [certificate] : [certificate, ca]);
        xds.Set(ListenerType, "l1", TlsListener("tls", certificate.Name, caSecret));
        var legate = await InProcessLegate.StartAsync(AdsBootstrap(xds.Port));
        await XdsWait.UntilAsync(() => legate.Server.Listeners.Find("tls")?.BoundEndpoint is not null, "the TLS listener");
        return legate;
    }

    private static Envoy.Config.Cluster.V3.Cluster Placeholder() => new()
    {
        Name = "placeholder",
        Type = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType.Static,
        ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
        LoadAssignment = new Envoy.Config.Endpoint.V3.ClusterLoadAssignment { ClusterName = "placeholder" },
    };

    internal static Secret CertificateSecret(string name, TestCertificates.Issued certificate) => new()
    {
        Name = name,
        TlsCertificate = new TlsCertificate
        {
            CertificateChain = new DataSource { InlineString = certificate.CertificatePem },
            PrivateKey = new DataSource { InlineString = certificate.KeyPem },
        },
    };

    internal static Secret CaSecret(string name, string caPem) => new()
    {
        Name = name,
        ValidationContext = new CertificateValidationContext { TrustedCa = new DataSource { InlineString = caPem } },
    };

    /// <summary>An HTTP listener answering "tls ok" behind TLS whose certificate (and CA, for mTLS) come from SDS over ADS.</summary>
    internal static Listener TlsListener(string name, string certificateSecret, string? caSecret = null, TimeSpan? initialFetchTimeout = null)
    {
        var host = new VirtualHost { Name = "all" };
        host.Domains.Add("*");
        host.Routes.Add(new Route
        {
            Match = new RouteMatch { Prefix = "/" },
            DirectResponse = new DirectResponseAction { Status = 200, Body = new DataSource { InlineString = "tls ok" } },
        });
        var routes = new RouteConfiguration { Name = name + "-routes" };
        routes.VirtualHosts.Add(host);
        var listener = InlineListener(name, routes);

        var source = Ads();
        if (initialFetchTimeout is { } timeout)
        {
            source.InitialFetchTimeout = Duration.FromTimeSpan(timeout);
        }

        var common = new CommonTlsContext();
        common.TlsCertificateSdsSecretConfigs.Add(new SdsSecretConfig { Name = certificateSecret, SdsConfig = source });
        if (caSecret is not null)
        {
            common.ValidationContextSdsSecretConfig = new SdsSecretConfig { Name = caSecret, SdsConfig = source };
        }

        var context = new DownstreamTlsContext { CommonTlsContext = common, RequireClientCertificate = caSecret is not null };
        listener.FilterChains[0].TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.tls", TypedConfig = Any.Pack(context) };
        return listener;
    }

    internal static async Task WaitUntilServedAsync(IPEndPoint endpoint, TestCertificates.Issued expected)
    {
        await XdsWait.UntilAsync(async () =>
        {
            var outcome = await TestTls.GetAsync(endpoint, new());
            return outcome.ServerCertificate?.Thumbprint == expected.Certificate.Thumbprint && outcome.Status == 200;
        }, "the certificate " + expected.Certificate.Subject + " to be served");
    }

    private static async Task KeepAliveRequestAsync(SslStream ssl)
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
