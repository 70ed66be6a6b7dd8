using System.Net.Security;
using System.Text;
using Legate.Extensions.Filters.Listener.ProxyProtocol;
using Legate.Tls;

namespace Legate.Tests.Tls;

/// <summary>The ClientHello and PROXY header parsers on real and hand-made bytes, whole and cut short.</summary>
public sealed class ClientHelloTests
{
    [Fact]
    public async Task ARealClientHelloGivesSniAndAlpnAndEveryPrefixAsksForMore()
    {
        var hello = await CaptureClientHelloAsync("api.example.com", ["h2", "http/1.1"]);

        Assert.Equal(ClientHello.ParseStatus.Done, ClientHello.TryParse(hello, out var parsed));
        Assert.Equal("api.example.com", parsed!.ServerName);
        Assert.Equal(["h2", "http/1.1"], parsed.ApplicationProtocols);
        Assert.True(parsed.SupportsEcdsa);
        for (var cut = 1; cut < hello.Length; cut += 7)
        {
            Assert.Equal(ClientHello.ParseStatus.NeedMoreData, ClientHello.TryParse(hello.AsSpan(0, cut), out _));
        }
    }

    [Fact]
    public void PlaintextIsNotTlsAndGarbageAfterTheRecordHeaderIsInvalid()
    {
        Assert.Equal(ClientHello.ParseStatus.NotTls, ClientHello.TryParse("GET / HTTP/1.1\r\n"u8, out _));
        Assert.Equal(ClientHello.ParseStatus.Invalid, ClientHello.TryParse([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00], out _));
    }

    [Fact]
    public void ProxyHeadersParseWithTlvsAndRejectNonsense()
    {
        var v2 = ListenerFilterTests.ProxyV2(System.Net.IPAddress.Parse("192.0.2.1"), 1234, System.Net.IPAddress.Loopback, 80);
        Assert.Equal(ProxyProtocolHeader.ParseStatus.Done, ProxyProtocolHeader.TryParse(v2, out var header));
        Assert.Equal("192.0.2.1:1234", header!.Source!.ToString());
        Assert.Equal(v2.Length, header.Length);
        Assert.Equal((byte)4, Assert.Single(header.Tlvs).Type);
        Assert.Equal(ProxyProtocolHeader.ParseStatus.NeedMoreData, ProxyProtocolHeader.TryParse(v2.AsSpan(0, 20), out _));

        var local = (byte[])v2.Clone();
        local[12] = 0x20;
        Assert.Equal(ProxyProtocolHeader.ParseStatus.Done, ProxyProtocolHeader.TryParse(local, out var localHeader));
        Assert.Null(localHeader!.Source);

        Assert.Equal(ProxyProtocolHeader.ParseStatus.Done, ProxyProtocolHeader.TryParse("PROXY UNKNOWN\r\nGET"u8, out var unknown));
        Assert.Null(unknown!.Source);
        Assert.Equal(ProxyProtocolHeader.ParseStatus.NeedMoreData, ProxyProtocolHeader.TryParse("PROXY TCP4 1.2.3.4"u8, out _));
        Assert.Equal(ProxyProtocolHeader.ParseStatus.Invalid, ProxyProtocolHeader.TryParse("PROXY TCP4 1.2.3.4 ::1 1 2\r\n"u8, out _));
        Assert.Equal(ProxyProtocolHeader.ParseStatus.Invalid, ProxyProtocolHeader.TryParse(Encoding.ASCII.GetBytes("PROXY " + new string('x', 120)), out _));
        Assert.Equal(ProxyProtocolHeader.ParseStatus.NotProxyProtocol, ProxyProtocolHeader.TryParse("GET / HTTP/1.1\r\n"u8, out _));
    }

    private static async Task<byte[]> CaptureClientHelloAsync(string sni, string[] alpn)
    {
        var capture = new CaptureStream();
        await using var ssl = new SslStream(capture);
        try
        {
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = sni,
                ApplicationProtocols = alpn.Select(a => new SslApplicationProtocol(a)).ToList(),
            });
        }
        catch (IOException)
        {
            // The capture stream ends the handshake after the first flight.
        }

        return capture.Written.ToArray();
    }

    /// <summary>Records what is written and answers every read with end of stream.</summary>
    private sealed class CaptureStream : Stream
    {
        public MemoryStream Written { get; } = new();

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => 0;

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Written.Write(buffer, offset, count);
    }
}
