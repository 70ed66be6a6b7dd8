using System.Net;
using System.Text.Json;
using Legate.Config;
using Legate.Tests.Harness;

namespace Legate.Tests.Http;

public sealed class LocalReplyConfigTests
{
    private static string Config(string localReplyConfig) =>
        TestConfigs.Admin() + "static_resources:\n  listeners:\n" + TestConfigs.DirectResponseListener("web", status: 503, body: "down for maintenance", extraHcm: localReplyConfig)
            .Replace("match: { prefix: \"/\" }", "match: { prefix: \"/direct\" }", StringComparison.Ordinal);

    [Fact]
    public async Task AMapperRewritesStatusAndBodyOfTheRepliesItMatches()
    {
        await using var legate = await InProcessLegate.StartAsync(Config("""
            local_reply_config:
              mappers:
              - filter: { response_flag_filter: { flags: [NR] } }
                status_code: 418
                body: { inline_string: "no such route, sorry" }
                headers_to_add:
                - header: { key: x-mapped, value: "yes" }
            """));

        using var noRoute = await legate.Http.GetAsync(legate.ListenerUri("web", "/missing"));
        Assert.Equal((HttpStatusCode)418, noRoute.StatusCode);
        Assert.Equal("no such route, sorry", await noRoute.Content.ReadAsStringAsync());
        Assert.Equal("yes", Assert.Single(noRoute.Headers.GetValues("x-mapped")));

        // The direct response has no NR flag: untouched.
        using var direct = await legate.Http.GetAsync(legate.ListenerUri("web", "/direct"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, direct.StatusCode);
        Assert.Equal("down for maintenance", await direct.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task BodyFormatJsonWrapsEveryLocalReply()
    {
        await using var legate = await InProcessLegate.StartAsync(Config("""
            local_reply_config:
              body_format:
                json_format:
                  code: "%RESPONSE_CODE%"
                  message: "%LOCAL_REPLY_BODY%"
                  flags: "%RESPONSE_FLAGS%"
                  path: "%REQ(:PATH)%"
            """));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/direct?x=1"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(503, json.RootElement.GetProperty("code").GetInt32());
        Assert.Equal("down for maintenance", json.RootElement.GetProperty("message").GetString());
        Assert.Equal("-", json.RootElement.GetProperty("flags").GetString());
        Assert.Equal("/direct?x=1", json.RootElement.GetProperty("path").GetString());
    }

    [Fact]
    public async Task StatusFilterAndTextFormatOverride()
    {
        await using var legate = await InProcessLegate.StartAsync(Config("""
            local_reply_config:
              mappers:
              - filter: { status_code_filter: { comparison: { op: GE, value: { default_value: 500, runtime_key: unused } } } }
                body_format_override:
                  text_format: "error %RESPONSE_CODE%: %LOCAL_REPLY_BODY%\n"
            """));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/direct"));

        Assert.Equal("error 503: down for maintenance\n", await response.Content.ReadAsStringAsync());
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public void UnknownCommandOperatorsAreConfigErrorsWithTheirPath()
    {
        var ex = Assert.Throws<ConfigException>(() =>
        {
            var options = Legate.Server.CommandLineParser.Parse(["--config-yaml", Config("""
                local_reply_config:
                  body_format: { text_format: "%NOT_AN_OPERATOR%" }
                """)]);
            var loaded = BootstrapLoader.Load(options.ConfigPath, options.ConfigYaml);
            using var logs = Legate.Server.Logging.LogManager.Create(options, new CapturingLogSink());
            _ = Legate.Server.LegateServer.Create(options, loaded, logs);
        });

        Assert.Contains("local_reply_config.body_format.text_format", ex.Message, StringComparison.Ordinal);
        Assert.Contains("%NOT_AN_OPERATOR%: command operator not supported yet", ex.Message, StringComparison.Ordinal);
    }
}
