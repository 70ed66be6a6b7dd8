using System.Buffers;
using Legate.Config;
using Legate.Extensions.Filters.Http.Tap;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Stats;
using Legate.Tests.Harness;
using Legate.Upstream;
using TapProto = Envoy.Extensions.Filters.Http.Tap.V3.Tap;

namespace Legate.Tests.Extensions.Filters.Http.Tap;

/// <summary>
/// The tap filter's callbacks on a stream it does not tap allocate nothing: with no admin session
/// attached, and with a session whose predicate rules the stream out. The same loop with a matching
/// predicate produces traces, so the measurement looks at the real path.
/// </summary>
public sealed class TapFilterAllocationTests
{
    private const int Iterations = 2000;

    [Fact]
    public async Task UntappedStreamsAllocateNothingAndTappedOnesAreTraced()
    {
        using var logs = LogManager.Create(CommandLineParser.Parse([]), new CapturingLogSink());
        var errors = new ConfigErrors();
        var registry = new TapAdminRegistry();
        var context = new HttpFilterFactoryContext
        {
            ClusterManager = ClusterManager.Compile(new Envoy.Config.Bootstrap.V3.Bootstrap(), errors),
            Stats = new StatsStore(),
            Logs = logs,
            Taps = registry,
        };
        var proto = new TapProto { CommonConfig = new() { AdminConfig = new() { ConfigId = "alloc" } } };
        var factory = Assert.IsType<TapFilterFactory>(TapFilterFactory.Create("tap", proto, "tap", errors, context));
        Assert.Empty(errors.Errors);

        var request = new HttpRequestHead();
        request.SetMethod("POST");
        request.SetPath("/alloc");
        request.Headers.Add("host", "example.com");
        var response = new HttpResponseHead { StatusCode = 200 };
        response.Headers.Add("content-type", "text/plain");
        var body = new BodyBuffer();
        body.SetBorrowed(new ReadOnlySequence<byte>("some body bytes"u8.ToArray()));
        HttpFilter filter = factory.CreateFilter();

        // No session attached.
        Assert.Equal(0, await MeasureAsync());

        // A session whose predicate needs a header the requests do not have.
        var notMatching = Attach("""
            match: { http_request_headers_match: { headers: [ { name: x-tap, present_match: true } ] } }
            output_config: { sinks: [ { streaming_admin: {} } ] }
            """, out var idleSink);
        Assert.Equal(0, await MeasureAsync());
        registry.Detach(notMatching);
        Assert.False(idleSink.Traces.TryRead(out _));

        // A matching session traces every stream of the same loop.
        var matching = Attach("""
            match: { any_match: true }
            output_config: { sinks: [ { streaming_admin: {} } ] }
            """, out var sink);
        await RunAsync(3);
        registry.Detach(matching);
        Assert.Equal(3, sink.Traces.Count);

        TapSettings Attach(string tapConfig, out StreamingAdminSink adminSink)
        {
            var config = new ProtoConverter(errors).Convert<Envoy.Config.Tap.V3.TapConfig>(ConfigDocument.Parse(tapConfig, ConfigFormat.Yaml));
            StreamingAdminSink? created = null;
            var settings = TapSettings.Compile(config, "tap_config", errors, format => created = new StreamingAdminSink(format), logs.Get(LogComponents.Http));
            Assert.Empty(errors.Errors);
            Assert.True(registry.TryAttach("alloc", settings!));
            adminSink = created!;
            return settings!;
        }

        async Task<long> MeasureAsync()
        {
            await RunAsync(Iterations); // warm up (tiering, lazily created lookups)
            var before = GC.GetAllocatedBytesForCurrentThread();
            await RunAsync(Iterations);
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }

        // Every callback completes synchronously, so the whole loop stays on this thread.
        async ValueTask RunAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                await filter.DecodeHeadersAsync(null!, request, endStream: false);
                await filter.DecodeDataAsync(null!, body, endStream: true);
                await filter.EncodeHeadersAsync(null!, response, endStream: false);
                await filter.EncodeDataAsync(null!, body, endStream: true);
                filter.OnDestroy();
                Assert.True(filter.TryRecycle());
                filter = factory.CreateFilter(filter);
            }
        }
    }
}
