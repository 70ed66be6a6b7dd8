using Legate.Http.Http1;
using Legate.Tracing.OpenTelemetry;

namespace Legate.Tests.Tracing;

/// <summary>W3C trace context parsing and writing as Envoy's OpenTelemetry tracer does.</summary>
public sealed class TraceParentTests
{
    private static HttpHeaderMap Headers(params (string Name, string Value)[] headers)
    {
        var map = new HttpHeaderMap();
        foreach (var (name, value) in headers)
        {
            map.Add(name, value);
        }

        return map;
    }

    [Fact]
    public void AValidTraceParentWithTraceState()
    {
        var headers = Headers(("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), ("tracestate", "congo=t61rcWkgMzE"), ("tracestate", "rojo=00f067aa0ba902b7"));
        Assert.True(TraceParent.TryExtract(headers, out var context, out var error));
        Assert.Null(error);
        Assert.Equal(0x0af7651916cd43ddUL, context.TraceIdHigh);
        Assert.Equal(0x8448eb211c80319cUL, context.TraceIdLow);
        Assert.Equal(0xb7ad6b7169203331UL, context.SpanId);
        Assert.True(context.Sampled);
        Assert.Equal("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", context.TraceState);
    }

    [Theory]
    [InlineData("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", false)]
    [InlineData("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03", true)]
    public void TheSampledFlagIsBitZero(string value, bool sampled)
    {
        Assert.True(TraceParent.TryExtract(Headers(("traceparent", value)), out var context, out _));
        Assert.Equal(sampled, context.Sampled);
    }

    [Theory]
    [InlineData("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331")]
    [InlineData("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01")]
    [InlineData("00-00000000000000000000000000000000-b7ad6b7169203331-01")]
    [InlineData("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01")]
    [InlineData("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
    [InlineData("00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01")]
    public void MalformedTraceParentsAreErrors(string value)
    {
        Assert.False(TraceParent.TryExtract(Headers(("traceparent", value)), out _, out var error));
        Assert.NotNull(error);
    }

    [Fact]
    public void InjectWritesBothHeaders()
    {
        var headers = Headers(("traceparent", "old"));
        TraceParent.Inject(headers, 0x0af7651916cd43dd, 0x8448eb211c80319c, 0x1, sampled: true, "a=b");
        Assert.Equal("00-0af7651916cd43dd8448eb211c80319c-0000000000000001-01", headers.GetValue("traceparent"));
        Assert.Equal("a=b", headers.GetValue("tracestate"));
        TraceParent.Inject(headers, 1, 2, 3, sampled: false, string.Empty);
        Assert.Equal("00-00000000000000010000000000000002-0000000000000003-00", headers.GetValue("traceparent"));
    }
}
