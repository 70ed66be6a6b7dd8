using Envoy.Config.Bootstrap.V3;
using Envoy.Config.Core.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf;
using Legate.Admin;
using Any = Google.Protobuf.WellKnownTypes.Any;

namespace Legate.Tests.Admin;

public sealed class SensitiveFieldRedactorTests
{
    [Fact]
    public void PrivateKeysInsideTransportSocketsAreRedactedWhateverTheirSource()
    {
        var context = new DownstreamTlsContext
        {
            CommonTlsContext = new CommonTlsContext
            {
                TlsCertificates =
                {
                    new TlsCertificate
                    {
                        CertificateChain = new DataSource { InlineString = "CERT" },
                        PrivateKey = new DataSource { InlineString = "-----BEGIN PRIVATE KEY-----" },
                        Password = new DataSource { Filename = "/etc/secret/password" },
                    },
                    new TlsCertificate { PrivateKey = new DataSource { InlineBytes = ByteString.CopyFromUtf8("KEY") } },
                },
            },
        };
        var bootstrap = new Bootstrap
        {
            StaticResources = new Bootstrap.Types.StaticResources
            {
                Listeners =
                {
                    new Envoy.Config.Listener.V3.Listener
                    {
                        Name = "tls",
                        FilterChains = { new Envoy.Config.Listener.V3.FilterChain { TransportSocket = new TransportSocket { Name = "tls", TypedConfig = Any.Pack(context) } } },
                    },
                },
            },
        };

        SensitiveFieldRedactor.Redact(bootstrap);

        var redacted = bootstrap.StaticResources.Listeners[0].FilterChains[0].TransportSocket.TypedConfig.Unpack<DownstreamTlsContext>();
        var first = redacted.CommonTlsContext.TlsCertificates[0];
        Assert.Equal("CERT", first.CertificateChain.InlineString);
        Assert.Equal("[redacted]", first.PrivateKey.InlineString);
        Assert.Equal("[redacted]", first.Password.Filename);
        Assert.Equal("[redacted]", redacted.CommonTlsContext.TlsCertificates[1].PrivateKey.InlineBytes.ToStringUtf8());
        Assert.DoesNotContain("PRIVATE KEY", bootstrap.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void NonSensitiveFieldsAreUntouched()
    {
        var bootstrap = new Bootstrap { Node = new Node { Id = "n", Cluster = "c" } };
        var before = bootstrap.Clone();

        SensitiveFieldRedactor.Redact(bootstrap);

        Assert.Equal(before, bootstrap);
    }
}
