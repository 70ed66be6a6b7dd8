using Legate.Tests.Harness;

namespace Legate.Tests.Http;

/// <summary>
/// <c>stream_error_on_invalid_http_message</c> on HTTP/1.1 (and <c>http_protocol_options</c>'
/// <c>override_stream_error_on_invalid_http_message</c>, which wins): by default a 400 the proxy
/// answers itself ends the connection (<c>connection: close</c>, then the close), as Envoy's
/// onLocalReply; set, the connection stays open for the next request. A request the codec cannot
/// parse closes the connection either way.
/// </summary>
public sealed class StreamErrorOnInvalidHttpMessageTests
{
    // An escaped slash under REJECT_REQUEST is a connection-manager 400; /bad is a router 400.
    private const string EscapedSlash = "GET /a%2Fb HTTP/1.1\r\nHost: web\r\n\r\n";
    private const string Bad = "GET /bad HTTP/1.1\r\nHost: web\r\n\r\n";
    private const string Ok = "GET /ok HTTP/1.1\r\nHost: web\r\n\r\n";

    [Theory]
    [InlineData(EscapedSlash)]
    [InlineData(Bad)]
    public async Task ByDefaultALocal400ClosesTheConnection(string request)
    {
        await using var legate = await InProcessLegate.StartAsync(Config(""));
        await using var connection = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await connection.WriteAsync(request);
        var response = await connection.ReadResponseAsync();
        Assert.Equal(400, response.Status);
        Assert.Equal("close", response.Header("connection"));
        Assert.True(await connection.WaitForCloseAsync());
    }

    [Theory]
    [InlineData(EscapedSlash)]
    [InlineData(Bad)]
    public async Task SetTheConnectionServesTheNextRequest(string request)
    {
        await using var legate = await InProcessLegate.StartAsync(Config("stream_error_on_invalid_http_message: true"));
        await using var connection = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await connection.WriteAsync(request);
        var response = await connection.ReadResponseAsync();
        Assert.Equal(400, response.Status);
        Assert.Null(response.Header("connection"));

        await connection.WriteAsync(Ok);
        var next = await connection.ReadResponseAsync();
        Assert.Equal(200, next.Status);
        Assert.Equal("ok", System.Text.Encoding.ASCII.GetString(next.Body));
    }

    /// <summary>The code is the proxy's own, before <c>local_reply_config</c> rewrites it.</summary>
    [Fact]
    public async Task ALocal400MappedToAnotherCodeStillClosesTheConnection()
    {
        await using var legate = await InProcessLegate.StartAsync(Config("""
            local_reply_config:
              mappers:
              - filter: { status_code_filter: { comparison: { op: EQ, value: { default_value: 400, runtime_key: unused } } } }
                status_code: 422
            """));
        await using var connection = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await connection.WriteAsync(Bad);
        var response = await connection.ReadResponseAsync();
        Assert.Equal(422, response.Status);
        Assert.Equal("close", response.Header("connection"));
        Assert.True(await connection.WaitForCloseAsync());
    }

    [Fact]
    public async Task TheHttpProtocolOptionsOverrideWinsOverTheConnectionManagersField()
    {
        await using var legate = await InProcessLegate.StartAsync(Config("""
            stream_error_on_invalid_http_message: true
            http_protocol_options: { override_stream_error_on_invalid_http_message: false }
            """));
        await using var connection = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await connection.WriteAsync(Bad);
        var response = await connection.ReadResponseAsync();
        Assert.Equal("close", response.Header("connection"));
        Assert.True(await connection.WaitForCloseAsync());

        await using var keeps = await InProcessLegate.StartAsync(Config("http_protocol_options: { override_stream_error_on_invalid_http_message: true }"));
        await using var kept = await RawHttpConnection.ConnectAsync(keeps.ListenerEndpoint("web"));
        await kept.WriteAsync(Bad + Ok);
        Assert.Equal(400, (await kept.ReadResponseAsync()).Status);
        Assert.Equal(200, (await kept.ReadResponseAsync()).Status);
    }

    /// <summary>Bytes the codec cannot parse leave nothing to keep the connection for.</summary>
    [Fact]
    public async Task ACodecErrorClosesTheConnectionEvenWhenSet()
    {
        await using var legate = await InProcessLegate.StartAsync(Config("stream_error_on_invalid_http_message: true"));
        await using var connection = await RawHttpConnection.ConnectAsync(legate.ListenerEndpoint("web"));

        await connection.WriteAsync("GET /ok HTTP/1.1\r\nHost: web\r\nBad\u0001Name: x\r\n\r\n");
        var response = await connection.ReadResponseAsync();
        Assert.Equal(400, response.Status);
        Assert.Equal("close", response.Header("connection"));
        Assert.True(await connection.WaitForCloseAsync());
    }

    /// <summary>Legate's HTTP/2 codec keeps its own rules: the field says so when it can reach HTTP/2.</summary>
    [Fact]
    public async Task SetWhereHttp2CanArriveItWarnsThatItAppliesToHttp1Only()
    {
        await using var legate = await InProcessLegate.StartAsync(Config("stream_error_on_invalid_http_message: true"));
        Assert.Contains(legate.Server.Warnings, w => w.ToString().Contains("stream_error_on_invalid_http_message", StringComparison.Ordinal)
            && w.ToString().Contains("applies to HTTP/1.x connections only", StringComparison.Ordinal));

        await using var http1Only = await InProcessLegate.StartAsync(new ProxyConfig(1)
        {
            Codec = "HTTP1",
            Hcm = "stream_error_on_invalid_http_message: true",
            Routes = Routes,
        }.Build());
        Assert.DoesNotContain(http1Only.Server.Warnings, w => w.ToString().Contains("stream_error_on_invalid_http_message", StringComparison.Ordinal));
    }

    private const string Routes = """
        - match: { path: /bad }
          direct_response: { status: 400, body: { inline_string: "bad" } }
        - match: { prefix: / }
          direct_response: { status: 200, body: { inline_string: "ok" } }
        """;

    private static string Config(string hcm) => new ProxyConfig(1)
    {
        Hcm = "path_with_escaped_slashes_action: REJECT_REQUEST\n" + hcm,
        Routes = Routes,
    }.Build();
}
