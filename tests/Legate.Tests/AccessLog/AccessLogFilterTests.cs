using System.Diagnostics;
using Envoy.Config.Accesslog.V3;
using Legate.Config;
using Legate.Http;
using Legate.Http.Formatter;
using Legate.Http.Http1;
using ProtoFilter = Envoy.Config.Accesslog.V3.AccessLogFilter;

namespace Legate.Tests.AccessLog;

public sealed class AccessLogFilterTests
{
    [Fact]
    public void TraceableFilterFollowsTheTraceReason()
    {
        var filter = Compile(new ProtoFilter { TraceableFilter = new TraceableFilter() });
        var context = Context(200);
        Assert.False(filter.Evaluate(context));
        context.Info.TraceReason = Legate.Tracing.TraceReason.Sampling;
        Assert.True(filter.Evaluate(context));
    }

    [Fact]
    public void NotHealthCheckFilterSkipsHealthChecks()
    {
        var filter = Compile(new ProtoFilter { NotHealthCheckFilter = new NotHealthCheckFilter() });
        var context = Context(200);
        Assert.True(filter.Evaluate(context));
        context.Info.HealthCheck = true;
        Assert.False(filter.Evaluate(context));
    }

    [Theory]
    [InlineData("14", false, true)]
    [InlineData("0", false, false)]
    [InlineData("0", true, true)]
    [InlineData(null, false, false)] // 200 without grpc-status maps to Unknown.
    public void GrpcStatusFilterMatchesStatusesOrExcludesThem(string? status, bool exclude, bool expected)
    {
        var config = new GrpcStatusFilter { Exclude = exclude };
        config.Statuses.Add(GrpcStatusFilter.Types.Status.Unavailable);
        config.Statuses.Add(GrpcStatusFilter.Types.Status.Internal);
        var filter = Compile(new ProtoFilter { GrpcStatusFilter = config });
        Assert.Equal(expected, filter.Evaluate(Context(200, status)));
    }

    [Fact]
    public void DurationFilterComparesMilliseconds()
    {
        var filter = Compile(new ProtoFilter
        {
            DurationFilter = new DurationFilter { Comparison = new ComparisonFilter { Op = ComparisonFilter.Types.Op.Ge, Value = new Envoy.Config.Core.V3.RuntimeUInt32 { DefaultValue = 100 } } },
        });
        var quick = Context(200);
        quick.Info.EndTimestamp = quick.Info.StartTimestamp + (Stopwatch.Frequency / 100);
        var slow = Context(200);
        slow.Info.EndTimestamp = slow.Info.StartTimestamp + Stopwatch.Frequency;
        Assert.False(filter.Evaluate(quick));
        Assert.True(filter.Evaluate(slow));
    }

    [Fact]
    public void RuntimeFilterSamplesByRequestIdUnlessIndependent()
    {
        var filter = Compile(new ProtoFilter
        {
            RuntimeFilter = new RuntimeFilter { RuntimeKey = "k", PercentSampled = new Envoy.Type.V3.FractionalPercent { Numerator = 50 } },
        });
        // The first 8 hex digits: 0 % 100 = 0 < 50 is sampled; 0x63 % 100 = 99 is not.
        Assert.True(filter.Evaluate(Context(200, requestId: "00000000-0000-4000-8000-000000000000")));
        Assert.False(filter.Evaluate(Context(200, requestId: "00000063-0000-4000-8000-000000000000")));
    }

    [Fact]
    public void UnsupportedFiltersAreErrors()
    {
        var errors = new ConfigErrors();
        Assert.Null(Legate.AccessLog.AccessLogFilter.Compile(new ProtoFilter { MetadataFilter = new MetadataFilter() }, "f", errors));
        Assert.Contains("not supported yet", Assert.Single(errors.Errors).Message, StringComparison.Ordinal);
    }

    private static Legate.AccessLog.AccessLogFilter Compile(ProtoFilter proto)
    {
        var errors = new ConfigErrors();
        var filter = Legate.AccessLog.AccessLogFilter.Compile(proto, "f", errors);
        Assert.Empty(errors.Errors);
        return filter!;
    }

    private static FormatterContext Context(int status, string? grpcStatus = null, string? requestId = null)
    {
        var info = new StreamInfo();
        info.Reset(DateTimeOffset.UtcNow, Stopwatch.GetTimestamp());
        info.EndTimestamp = info.StartTimestamp;
        info.ResponseCode = status;
        var request = new HttpRequestHead();
        request.Headers.Add(KnownHeader.ContentType, "application/grpc");
        if (requestId is not null)
        {
            request.Headers.Add("x-request-id", requestId);
        }

        var trailers = new HttpHeaderMap();
        if (grpcStatus is not null)
        {
            trailers.Add("grpc-status", grpcStatus);
        }

        return new FormatterContext(info, request, new HttpResponseHead { StatusCode = status }, trailers);
    }
}
