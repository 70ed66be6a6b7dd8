using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Legate.Tests.Harness;

namespace Legate.Tests.Http;

public sealed class StreamTimeoutTests
{
    private static string Config(int upstreamPort, string hcmExtra, string routeExtra = "") =>
        TestConfigs.ProxyToUpstream(upstreamPort, hcmExtra, routeExtra);

    [Fact]
    public async Task StreamIdleTimeoutAnswers408WhenTheUpstreamStaysSilent()
    {
        var never = new TaskCompletionSource();
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("late") with { HoldUntil = never.Task });
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "stream_idle_timeout: 0.3s", ", timeout: 0s"));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/slow")).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpStatusCode.RequestTimeout, response.StatusCode);
        Assert.Equal("stream timeout", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, legate.Server.Stats.Counter("http.web.downstream_rq_idle_timeout").Value);
        never.SetResult();
    }

    [Fact]
    public async Task RequestTimeoutAnswers408ToABodyThatNeverFinishesAndClosesTheConnection()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "request_timeout: 0.3s"));

        using var client = new TcpClient();
        await client.ConnectAsync(legate.ListenerEndpoint("web"));
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab"));

        // The proxy answers, then closes: read to EOF.
        var received = await ReadToEndAsync(stream).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.StartsWith("HTTP/1.1 408 Request Timeout\r\n", received, StringComparison.Ordinal);
        Assert.Contains("\r\nconnection: close\r\n", received, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nrequest timeout", received, StringComparison.Ordinal);
        Assert.Equal(1, legate.Server.Stats.Counter("http.web.downstream_rq_timeout").Value);

        // The proxy keeps serving.
        using var next = await legate.Http.PostAsync(legate.ListenerUri("web", "/again"), new StringContent("hello"));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task MaxStreamDurationAnswers504OnceTheRequestIsComplete()
    {
        var never = new TaskCompletionSource();
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Text("late") with { HoldUntil = never.Task });
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "common_http_protocol_options: { max_stream_duration: 0.3s }", ", timeout: 0s"));

        using var response = await legate.Http.GetAsync(legate.ListenerUri("web", "/slow")).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("downstream duration timeout", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, legate.Server.Stats.Counter("http.web.downstream_rq_max_duration_reached").Value);
        Assert.DoesNotContain("max_stream_duration", legate.Logs.Text, StringComparison.Ordinal);
        never.SetResult();
    }

    [Fact]
    public async Task MaxStreamDurationAnswers408WhileTheRequestIsStillArriving()
    {
        await using var upstream = await ScriptedUpstream.StartAsync(UpstreamResponse.Echo());
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "common_http_protocol_options: { max_stream_duration: 0.3s }"));

        using var client = new TcpClient();
        await client.ConnectAsync(legate.ListenerEndpoint("web"));
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab"));

        var received = await ReadToEndAsync(stream).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.StartsWith("HTTP/1.1 408 Request Timeout\r\n", received, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\ndownstream duration timeout", received, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MaxConnectionDurationClosesAnIdleConnectionAndEndsABusyOneAfterItsResponse()
    {
        var gate = new TaskCompletionSource();
        var script = new UpstreamScript(UpstreamResponse.Text("fast")).OnPath("/slow", UpstreamResponse.Text("slow") with { HoldUntil = gate.Task });
        await using var upstream = await ScriptedUpstream.StartAsync(script);
        await using var legate = await InProcessLegate.StartAsync(Config(upstream.Port, "common_http_protocol_options: { max_connection_duration: 0.3s }"));

        // Idle: the connection is closed once the duration is reached.
        using (var idle = new TcpClient())
        {
            await idle.ConnectAsync(legate.ListenerEndpoint("web"));
            var stream = idle.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"));
            var received = await ReadToEndAsync(stream).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.StartsWith("HTTP/1.1 200 OK\r\n", received, StringComparison.Ordinal);
            Assert.EndsWith("fast", received, StringComparison.Ordinal);
        }

        // Busy when it is reached: the response finishes, with connection: close, then the close.
        using (var busy = new TcpClient())
        {
            await busy.ConnectAsync(legate.ListenerEndpoint("web"));
            var stream = busy.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
            var counter = legate.Server.Stats.Counter("http.web.downstream_cx_max_duration_reached");
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (counter.Value < 2 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }

            gate.SetResult();
            var received = await ReadToEndAsync(stream).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.StartsWith("HTTP/1.1 200 OK\r\n", received, StringComparison.Ordinal);
            Assert.Contains("\r\nconnection: close\r\n", received, StringComparison.Ordinal);
            Assert.EndsWith("slow", received, StringComparison.Ordinal);
        }

        Assert.Equal(2, legate.Server.Stats.Counter("http.web.downstream_cx_max_duration_reached").Value);
    }

    private static async Task<string> ReadToEndAsync(NetworkStream stream)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int read;
        while ((read = await stream.ReadAsync(chunk)) > 0)
        {
            buffer.Write(chunk, 0, read);
        }

        return Encoding.ASCII.GetString(buffer.ToArray());
    }
}
