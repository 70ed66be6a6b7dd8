using Legate.Http.Http1;
using Legate.Tracing.Zipkin;

namespace Legate.Tests.Tracing;

/// <summary>Reading B3 contexts (multi and single header) as Envoy's zipkin extractor does.</summary>
public sealed class B3ContextTests
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
    public void MultiHeadersWith64BitIds()
    {
        var headers = Headers(("x-b3-traceid", "0000000000000abc"), ("x-b3-spanid", "00000000000000de"), ("x-b3-parentspanid", "00000000000000f1"));
        Assert.True(B3Context.TryExtract(headers, sampled: true, out var context, out var error));
        Assert.Null(error);
        Assert.Equal(new B3Context(0, 0xabc, 0xde, 0xf1, true), context);
    }

    [Fact]
    public void MultiHeadersWith128BitTraceId()
    {
        var headers = Headers(("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"), ("x-b3-spanid", "a2fb4a1d1a96d312"));
        Assert.True(B3Context.TryExtract(headers, sampled: false, out var context, out _));
        Assert.Equal(0x463ac35c9f6413adUL, context.TraceIdHigh);
        Assert.Equal(0x48485a3953bb6124UL, context.TraceId);
        Assert.Equal(0xa2fb4a1d1a96d312UL, context.SpanId);
        Assert.Equal(0UL, context.ParentId);
        Assert.Equal("463ac35c9f6413ad48485a3953bb6124", B3Context.TraceHex(context.TraceIdHigh, context.TraceId));
    }

    [Fact]
    public void NoContextWhenTraceOrSpanIdIsMissing()
    {
        Assert.False(B3Context.TryExtract(Headers(("x-b3-traceid", "0000000000000abc")), true, out _, out var error));
        Assert.Null(error);
        Assert.False(B3Context.TryExtract(Headers(), true, out _, out error));
        Assert.Null(error);
    }

    [Theory]
    [InlineData("x-b3-traceid", "zz")]
    [InlineData("x-b3-spanid", "not-hex")]
    [InlineData("x-b3-parentspanid", "123456789012345678")]
    public void MalformedMultiHeadersAreErrors(string name, string value)
    {
        var headers = Headers(("x-b3-traceid", "0000000000000abc"), ("x-b3-spanid", "00000000000000de"));
        headers.Set(name, value);
        Assert.False(B3Context.TryExtract(headers, true, out _, out var error));
        Assert.Contains(name, error);
    }

    [Fact]
    public void SingleHeaderWithEveryPart()
    {
        var headers = Headers(("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"), ("x-b3-traceid", "0000000000000abc"), ("x-b3-spanid", "00000000000000de"));
        Assert.Equal(true, B3Context.ExtractSampled(headers));
        Assert.True(B3Context.TryExtract(headers, true, out var context, out _));
        Assert.Equal(0x80f198ee56343ba8UL, context.TraceIdHigh);
        Assert.Equal(0x64fe8b2a57d3eff7UL, context.TraceId);
        Assert.Equal(0xe457b5a2e4d86bd1UL, context.SpanId);
        Assert.Equal(0x05e3ac9a4f6e3b90UL, context.ParentId);
    }

    [Theory]
    [InlineData("0", false)]
    [InlineData("1", true)]
    [InlineData("d", true)]
    [InlineData("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0", false)]
    [InlineData("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1", null)]
    public void SingleHeaderSamplingState(string b3, bool? sampled)
    {
        var headers = Headers(("b3", b3), ("x-b3-sampled", "1"));
        Assert.Equal(sampled, B3Context.ExtractSampled(headers));
    }

    [Fact]
    public void SingleHeaderWithOnlyASamplingStateCarriesNoContext()
    {
        Assert.False(B3Context.TryExtract(Headers(("b3", "1")), true, out _, out var error));
        Assert.Null(error);
        Assert.False(B3Context.TryExtract(Headers(("b3", "x")), true, out _, out error));
        Assert.NotNull(error);
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("true", true)]
    [InlineData("0", false)]
    [InlineData("false", false)]
    public void SampledHeader(string value, bool sampled) =>
        Assert.Equal(sampled, B3Context.ExtractSampled(Headers(("x-b3-sampled", value))));

    [Fact]
    public void DebugFlagMeansSampledAndNoHeaderMeansTheLocalDecision()
    {
        Assert.Equal(true, B3Context.ExtractSampled(Headers(("x-b3-flags", "1"))));
        Assert.Null(B3Context.ExtractSampled(Headers()));
    }
}
