using System.Net;
using Google.Protobuf.WellKnownTypes;
using Legate.Grpc;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Tests.Harness;

namespace Legate.Tests.Grpc;

/// <summary>
/// The gRPC layer end to end: our client (SocketsHttpHandler, h2c) against our Kestrel server,
/// and against a hand-written Kestrel peer that frames responses itself (so the client is not
/// only tested against its own server's habits).
/// </summary>
public sealed class GrpcChannelTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly LogManager _logs = LogManager.Create(CommandLineParser.Parse([]), new CapturingLogSink());
    private GrpcServer _server = null!;
    private GrpcChannel _channel = null!;
    private readonly TaskCompletionSource<string?> _seenMetadata = new();
    private readonly TaskCompletionSource<TimeSpan?> _seenDeadline = new();

    public async Task InitializeAsync()
    {
        _server = new GrpcServer(new IPEndPoint(IPAddress.Loopback, 0), _logs.Get(LogComponents.Misc))
            .Map("/test.Echo/Upper", async call =>
            {
                // Bidirectional: answer each message as it arrives, before the client half-closes.
                while (await call.ReadAsync(StringValue.Parser) is { } message)
                {
                    await call.WriteAsync(new StringValue { Value = message.Value.ToUpperInvariant() });
                }
            })
            .Map("/test.Echo/Unary", async call =>
            {
                _seenMetadata.TrySetResult(call.RequestHeaders["x-tenant"].ToString());
                call.ResponseHeaders["x-served-by"] = "legate-test";
                var request = await call.ReadAsync(StringValue.Parser);
                await call.WriteAsync(new Int32Value { Value = request!.Value.Length });
            })
            .Map("/test.Echo/Fail", async call =>
            {
                await call.ReadAsync(StringValue.Parser);
                throw new GrpcException(GrpcStatusCode.NotFound, "no such thing: 100% gone ✓");
            })
            .Map("/test.Echo/FailAfterOne", async call =>
            {
                await call.WriteAsync(new StringValue { Value = "one" });
                throw new GrpcException(GrpcStatusCode.ResourceExhausted, "enough");
            })
            .Map("/test.Echo/Hang", async call =>
            {
                _seenDeadline.TrySetResult(call.Deadline);
                await Task.Delay(System.Threading.Timeout.Infinite, call.CallAborted);
            });
        await _server.StartAsync(CancellationToken.None);
        var endpoint = _server.BoundEndpoint;
        _channel = new GrpcChannel(new GrpcChannelOptions
        {
            ResolveEndpoint = _ => ValueTask.FromResult<EndPoint>(endpoint),
            Authority = "test-cluster",
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
        });
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
        _logs.Dispose();
    }

    [Fact]
    public async Task ABidirectionalCallExchangesMessagesWhileBothSidesAreOpen()
    {
        await using var call = _channel.StartCall<StringValue, StringValue>("/test.Echo/Upper", StringValue.Parser);
        call.Write(new StringValue { Value = "first" });
        // The reply arrives while the request stream is still open: a real duplex call.
        var first = await call.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.Equal("FIRST", first!.Value);

        call.Write(new StringValue { Value = "second" });
        Assert.Equal("SECOND", (await call.ReadAsync().AsTask().WaitAsync(Timeout))!.Value);

        call.CompleteRequest();
        Assert.Null(await call.ReadAsync().AsTask().WaitAsync(Timeout));
        Assert.Equal(GrpcStatusCode.Ok, call.Status);
    }

    [Fact]
    public async Task AStreamStaysOpenWhileTheClientHasNothingToSend()
    {
        // An xDS client is silent between ACKs for minutes. Kestrel's minimum request body data
        // rate (240 B/s after a 5 s grace) used to abort such a stream after 5 s of quiet.
        await using var call = _channel.StartCall<StringValue, StringValue>("/test.Echo/Upper", StringValue.Parser);
        call.Write(new StringValue { Value = "before" });
        Assert.Equal("BEFORE", (await call.ReadAsync().AsTask().WaitAsync(Timeout))!.Value);

        // The quiet period is what is tested here, not a synchronisation.
        await Task.Delay(TimeSpan.FromSeconds(8));

        call.Write(new StringValue { Value = "after" });
        Assert.Equal("AFTER", (await call.ReadAsync().AsTask().WaitAsync(Timeout))!.Value);
        call.CompleteRequest();
        Assert.Null(await call.ReadAsync().AsTask().WaitAsync(Timeout));
        Assert.Equal(GrpcStatusCode.Ok, call.Status);
    }

    [Fact]
    public async Task AUnaryCallCarriesInitialMetadataBothWays()
    {
        var metadata = new[] { new KeyValuePair<string, string>("x-tenant", "blue") };
        await using var call = _channel.StartCall<StringValue, Int32Value>("/test.Echo/Unary", Int32Value.Parser, new GrpcCallOptions { Metadata = metadata });
        call.Write(new StringValue { Value = "hello" });
        call.CompleteRequest();
        var headers = await call.ResponseHeadersAsync().WaitAsync(Timeout);
        Assert.Equal("legate-test", headers.GetValues("x-served-by").Single());
        Assert.Equal(5, (await call.ReadAsync())!.Value);
        Assert.Null(await call.ReadAsync());
        Assert.Equal("blue", await _seenMetadata.Task.WaitAsync(Timeout));

        var length = await _channel.UnaryAsync("/test.Echo/Unary", new StringValue { Value = "four" }, Int32Value.Parser).WaitAsync(Timeout);
        Assert.Equal(4, length.Value);
    }

    [Fact]
    public async Task AnErrorBeforeAnyMessageIsATrailersOnlyResponseWithItsStatusAndDecodedMessage()
    {
        var ex = await Assert.ThrowsAsync<GrpcException>(() =>
            _channel.UnaryAsync("/test.Echo/Fail", new StringValue { Value = "x" }, StringValue.Parser).WaitAsync(Timeout));
        Assert.Equal(GrpcStatusCode.NotFound, ex.Status);
        Assert.Equal("no such thing: 100% gone ✓", ex.Message);
    }

    [Fact]
    public async Task AnErrorAfterMessagesComesFromTheTrailers()
    {
        await using var call = _channel.StartCall<StringValue, StringValue>("/test.Echo/FailAfterOne", StringValue.Parser);
        call.CompleteRequest();
        Assert.Equal("one", (await call.ReadAsync().AsTask().WaitAsync(Timeout))!.Value);
        var ex = await Assert.ThrowsAsync<GrpcException>(() => call.ReadAsync().AsTask().WaitAsync(Timeout));
        Assert.Equal(GrpcStatusCode.ResourceExhausted, ex.Status);
        Assert.Equal("enough", ex.Message);
        Assert.Equal(GrpcStatusCode.ResourceExhausted, call.Status);
    }

    [Fact]
    public async Task ADeadlineIsSentAsGrpcTimeoutAndEndsTheCallWithDeadlineExceeded()
    {
        // Long enough for a loaded machine's server to see the call before the client gives up on it.
        await using var call = _channel.StartCall<StringValue, StringValue>("/test.Echo/Hang", StringValue.Parser, new GrpcCallOptions { Deadline = TimeSpan.FromSeconds(3) });
        var ex = await Assert.ThrowsAsync<GrpcException>(() => call.ReadAsync().AsTask().WaitAsync(Timeout));
        Assert.Equal(GrpcStatusCode.DeadlineExceeded, ex.Status);
        var sent = await _seenDeadline.Task.WaitAsync(Timeout);
        Assert.NotNull(sent);
        Assert.InRange(sent!.Value, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task AnUnknownMethodIsUnimplemented()
    {
        var ex = await Assert.ThrowsAsync<GrpcException>(() =>
            _channel.UnaryAsync("/test.Echo/Nope", new StringValue(), StringValue.Parser).WaitAsync(Timeout));
        Assert.Equal(GrpcStatusCode.Unimplemented, ex.Status);
    }

    [Fact]
    public async Task NoServerIsUnavailable()
    {
        using var nowhere = new GrpcChannel(new GrpcChannelOptions
        {
            ResolveEndpoint = _ => ValueTask.FromResult<EndPoint>(new IPEndPoint(IPAddress.Loopback, FreePort.Get())),
        });
        var ex = await Assert.ThrowsAsync<GrpcException>(() => nowhere.UnaryAsync("/test.Echo/Unary", new StringValue(), Int32Value.Parser).WaitAsync(Timeout));
        Assert.Equal(GrpcStatusCode.Unavailable, ex.Status);
    }

    [Fact]
    public async Task ResponsesFramedByAnotherPeerAreReadAcrossArbitraryChunkBoundaries()
    {
        // A raw Kestrel h2c peer that writes one message split over three writes, then trailers.
        await using var peer = new Legate.Network.KestrelListener(new IPEndPoint(IPAddress.Loopback, 0),
            Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2, 1, _logs.Get(LogComponents.Misc));
        await peer.StartAsync(async context =>
        {
            context.Response.ContentType = "application/grpc+proto";
            var framed = GrpcStreamReader.Frame(new StringValue { Value = "split across writes" });
            foreach (var piece in new[] { framed[..2], framed[2..9], framed[9..] })
            {
                await context.Response.Body.WriteAsync(piece);
                await context.Response.Body.FlushAsync();
            }

            context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseTrailersFeature>()!.Trailers["grpc-status"] = "0";
        }, CancellationToken.None);
        var endpoint = peer.BoundEndpoint;
        using var channel = new GrpcChannel(new GrpcChannelOptions { ResolveEndpoint = _ => ValueTask.FromResult<EndPoint>(endpoint) });
        var reply = await channel.UnaryAsync("/any/Method", new StringValue(), StringValue.Parser).WaitAsync(Timeout);
        Assert.Equal("split across writes", reply.Value);
    }

    [Theory]
    [InlineData(0, "0u")]
    [InlineData(1500, "1500000u")]
    [InlineData(200_000, "200000m")]
    [InlineData(200_000_000, "200000S")]
    public void TimeoutsAreFormattedWithAtMostEightDigits(long millis, string expected)
    {
        Assert.Equal(expected, GrpcProtocol.FormatTimeout(TimeSpan.FromMilliseconds(millis)));
        Assert.Equal(TimeSpan.FromMilliseconds(millis), GrpcProtocol.ParseTimeout(expected));
    }
}
