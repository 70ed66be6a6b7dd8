using Envoy.Config.Bootstrap.V3;
using Legate.Admin;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Tests.Harness;
using Microsoft.AspNetCore.Http;

namespace Legate.Tests.Admin;

public sealed class ServerInfoHandlerTests
{
    [Theory]
    [InlineData(nameof(ServerState.PreInitializing), 503, "PRE_INITIALIZING\n")]
    [InlineData(nameof(ServerState.Initializing), 503, "INITIALIZING\n")]
    [InlineData(nameof(ServerState.Live), 200, "LIVE\n")]
    [InlineData(nameof(ServerState.Draining), 503, "DRAINING\n")]
    public async Task ReadyAnswersLikeEnvoy(string state, int status, string body)
    {
        var server = new FakeServer { State = Enum.Parse<ServerState>(state) };

        var response = await new ServerInfoHandler(server).ReadyAsync(new DefaultHttpContext());

        Assert.Equal(status, response.Status);
        Assert.Equal(body, response.Body);
        Assert.Equal(AdminResponse.TextContentType, response.ContentType);
    }

    [Fact]
    public void UptimeIsWholeSecondsSinceStart()
    {
        var server = new FakeServer();
        server.Clock.Advance(TimeSpan.FromSeconds(61.9));

        var info = new ServerInfoHandler(server).Build();

        Assert.Equal(61, info.UptimeCurrentEpoch.Seconds);
        Assert.Equal(0, info.UptimeCurrentEpoch.Nanos);
        Assert.Equal(info.UptimeCurrentEpoch, info.UptimeAllEpochs);
    }

    private sealed class FakeServer : IServerInstance
    {
        public FakeServer() => StartTime = Clock.GetUtcNow();

        public ManualClock Clock { get; } = new();

        public ServerState State { get; set; }

        public CommandLineOptions Options { get; } = new();

        public Bootstrap Bootstrap { get; } = new();

        public DateTimeOffset ConfigLoadedAt => StartTime;

        public DateTimeOffset StartTime { get; }

        public TimeProvider Time => Clock;

        public LogManager Logs { get; } = new(new CapturingLogSink(), new LogFormatter("%v"), LogLevel.Info);

        public void RequestShutdown(string reason)
        {
        }
    }

    /// <summary>A clock that moves only when told to.</summary>
    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

        public void Advance(TimeSpan by) => _now += by;

        public override DateTimeOffset GetUtcNow() => _now;
    }
}
