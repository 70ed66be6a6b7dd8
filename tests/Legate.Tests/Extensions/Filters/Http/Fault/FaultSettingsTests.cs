using Envoy.Extensions.Filters.Common.Fault.V3;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Envoy.Type.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Extensions.Filters.Http.Fault;
using Legate.Http.Http1;
using Denominator = Envoy.Type.V3.FractionalPercent.Types.DenominatorType;

namespace Legate.Tests.Extensions.Filters.Http.Fault;

/// <summary>HTTPFault compilation and the per-request decisions (percentages, header controls).</summary>
public sealed class FaultSettingsTests
{
    [Theory]
    [InlineData(Denominator.Hundred, 100u)]
    [InlineData(Denominator.TenThousand, 10_000u)]
    [InlineData(Denominator.Million, 1_000_000u)]
    public void DenominatorsMapToEnvoysValues(Denominator type, uint expected) =>
        Assert.Equal(expected, FaultPercentage.From(new FractionalPercent { Numerator = 1, Denominator = type }).Denominator);

    [Theory]
    [InlineData(50u, Denominator.Hundred, 49ul, true)]
    [InlineData(50u, Denominator.Hundred, 50ul, false)]
    [InlineData(50u, Denominator.Hundred, 149ul, true)]
    [InlineData(50u, Denominator.Hundred, 199ul, false)]
    [InlineData(1u, Denominator.Million, 0ul, true)]
    [InlineData(1u, Denominator.Million, 1ul, false)]
    [InlineData(1u, Denominator.Million, 2_000_000ul, true)]
    [InlineData(25u, Denominator.TenThousand, 24ul, true)]
    [InlineData(25u, Denominator.TenThousand, 25ul, false)]
    [InlineData(150u, Denominator.Hundred, 99ul, true)]
    [InlineData(0u, Denominator.Hundred, 0ul, false)]
    public void PercentageIsRandomModuloDenominatorBelowNumerator(uint numerator, Denominator denominator, ulong random, bool enabled) =>
        Assert.Equal(enabled, FaultPercentage.From(new FractionalPercent { Numerator = numerator, Denominator = denominator }).IsEnabled(random));

    [Fact]
    public void AbsentPercentageIsZero() => Assert.False(FaultPercentage.From(null).IsEnabled(0));

    [Theory]
    [InlineData("10", 10u)]
    [InlineData("90", 50u)]
    [InlineData("0", 0u)]
    [InlineData("abc", 50u)]
    [InlineData("-5", 50u)]
    [InlineData(" 7 ", 7u)]
    public void PercentageHeaderCanOnlyLowerTheNumerator(string header, uint expected)
    {
        var headers = new HttpHeaderMap();
        headers.Add(FaultHeaders.AbortRequestPercentage, header);

        var percentage = new FaultPercentage(50, 10_000).WithHeader(headers, FaultHeaders.AbortRequestPercentage);

        Assert.Equal(expected, percentage.Numerator);
        Assert.Equal(10_000u, percentage.Denominator);
    }

    [Fact]
    public void FixedDelayAtFullPercentage()
    {
        var settings = Compile(new HTTPFault { Delay = new FaultDelay { FixedDelay = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(250)), Percentage = Full() } });

        Assert.Equal(TimeSpan.FromMilliseconds(250), settings.DelayFor(new HttpHeaderMap(), 12345));
        Assert.Equal((null, null), settings.AbortFor(new HttpHeaderMap(), 0));
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("250", 250)]
    [InlineData("0", null)]
    [InlineData("soon", null)]
    public void HeaderDelayReadsTheRequestHeader(string? header, int? expectedMs)
    {
        var settings = Compile(new HTTPFault { Delay = new FaultDelay { HeaderDelay = new FaultDelay.Types.HeaderDelay(), Percentage = Full() } });
        var headers = new HttpHeaderMap();
        if (header is not null)
        {
            headers.Add(FaultHeaders.DelayRequest, header);
        }

        Assert.Equal(expectedMs is { } ms ? TimeSpan.FromMilliseconds(ms) : null, settings.DelayFor(headers, 0));
    }

    [Fact]
    public void HeaderDelayPercentageHeaderApplies()
    {
        var settings = Compile(new HTTPFault { Delay = new FaultDelay { HeaderDelay = new FaultDelay.Types.HeaderDelay(), Percentage = Full() } });
        var headers = new HttpHeaderMap();
        headers.Add(FaultHeaders.DelayRequest, "10");
        headers.Add(FaultHeaders.DelayRequestPercentage, "0");

        Assert.Null(settings.DelayFor(headers, 0));
    }

    [Theory]
    [InlineData("503", null, 503, null)]
    [InlineData("700", null, null, null)]
    [InlineData("199", "14", 200, 14)]
    [InlineData(null, "14", 200, 14)]
    [InlineData(null, "x", null, null)]
    [InlineData(null, null, null, null)]
    public void HeaderAbortReadsHttpThenGrpcHeader(string? http, string? grpc, int? expectedHttp, int? expectedGrpc)
    {
        var settings = Compile(new HTTPFault { Abort = new FaultAbort { HeaderAbort = new FaultAbort.Types.HeaderAbort(), Percentage = Full() } });
        var headers = new HttpHeaderMap();
        if (http is not null)
        {
            headers.Add(FaultHeaders.AbortRequest, http);
        }

        if (grpc is not null)
        {
            headers.Add(FaultHeaders.AbortGrpcRequest, grpc);
        }

        Assert.Equal((expectedHttp, expectedGrpc), settings.AbortFor(headers, 0));
    }

    [Fact]
    public void FixedGrpcAbortAnswersHttp200()
    {
        var settings = Compile(new HTTPFault { Abort = new FaultAbort { GrpcStatus = 14, Percentage = Full() } });

        Assert.Equal((200, 14), settings.AbortFor(new HttpHeaderMap(), 0));
    }

    [Fact]
    public void AbortPercentageIsDrawn()
    {
        var settings = Compile(new HTTPFault { Abort = new FaultAbort { HttpStatus = 503, Percentage = new FractionalPercent { Numerator = 1, Denominator = Denominator.TenThousand } } });

        Assert.Equal((503, null), settings.AbortFor(new HttpHeaderMap(), 10_000));
        Assert.Equal((null, null), settings.AbortFor(new HttpHeaderMap(), 10_001));
    }

    [Fact]
    public void OutOfRangeHttpStatusIsAnErrorWithItsPath()
    {
        var errors = new ConfigErrors();

        var settings = FaultSettings.Compile(new HTTPFault { Abort = new FaultAbort { HttpStatus = 700, Percentage = Full() } }, "f", errors);

        Assert.Null(settings);
        Assert.Equal("f.abort.http_status", Assert.Single(errors.Errors).Path);
    }

    [Fact]
    public void BadHeaderMatcherRegexIsAnError()
    {
        var errors = new ConfigErrors();
        var config = new HTTPFault { Abort = new FaultAbort { HttpStatus = 503, Percentage = Full() } };
        config.Headers.Add(new Envoy.Config.Route.V3.HeaderMatcher { Name = "x", StringMatch = new Envoy.Type.Matcher.V3.StringMatcher { SafeRegex = new Envoy.Type.Matcher.V3.RegexMatcher { Regex = "(" } } });

        Assert.Null(FaultSettings.Compile(config, "f", errors));
        Assert.StartsWith("f.headers[0]", Assert.Single(errors.Errors).Path, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingPercentageWarnsThatTheFaultNeverFires()
    {
        var errors = new ConfigErrors();

        Assert.NotNull(FaultSettings.Compile(new HTTPFault { Abort = new FaultAbort { HttpStatus = 503 } }, "f", errors));

        Assert.Empty(errors.Errors);
        Assert.Contains(errors.Warnings, w => w.Path == "f.abort.percentage" && w.Message.Contains("never injected", StringComparison.Ordinal));
    }

    [Fact]
    public void AResponseRateLimitWithoutAPercentageWarnsThatItNeverFires()
    {
        var errors = new ConfigErrors();

        Assert.NotNull(FaultSettings.Compile(new HTTPFault { ResponseRateLimit = new FaultRateLimit { HeaderLimit = new FaultRateLimit.Types.HeaderLimit() } }, "f", errors));

        Assert.Contains(errors.Warnings, w => w.Path == "f.response_rate_limit.percentage" && w.Message.Contains("never injected", StringComparison.Ordinal));
    }

    [Fact]
    public void AFixedResponseRateLimitIsDrawnByItsPercentage()
    {
        var settings = Compile(new HTTPFault
        {
            ResponseRateLimit = new FaultRateLimit { FixedLimit = new FaultRateLimit.Types.FixedLimit { LimitKbps = 64 }, Percentage = new FractionalPercent { Numerator = 50 } },
        });
        var headers = new HttpHeaderMap();

        Assert.Equal(64ul, settings.ResponseRateLimitFor(headers, 49));
        Assert.Null(settings.ResponseRateLimitFor(headers, 50));
        Assert.True(settings.HasResponseRateLimit);
        Assert.Equal("fault.http.rate_limit.response_percent", settings.ResponseRateLimitPercentRuntime);
    }

    [Theory]
    [InlineData(null, null, null)]
    [InlineData("128", null, 128ul)]
    [InlineData(" +128 ", null, 128ul)]
    [InlineData("0", null, null)]
    [InlineData("-5", null, null)]
    [InlineData("1k", null, null)]
    [InlineData("128", "0", null)]
    [InlineData("128", "100", 128ul)]
    [InlineData("128", "x", 128ul)]
    public void TheHeaderLimitReadsTheRequestsKilobytesAndPercentage(string? kbps, string? percent, ulong? expected)
    {
        var settings = Compile(new HTTPFault
        {
            ResponseRateLimit = new FaultRateLimit { HeaderLimit = new FaultRateLimit.Types.HeaderLimit(), Percentage = Full() },
        });
        var headers = new HttpHeaderMap();
        if (kbps is not null)
        {
            headers.Add("x-envoy-throttle-response-bandwidth", kbps);
        }

        if (percent is not null)
        {
            headers.Add("x-envoy-throttle-response-bandwidth-percentage", percent);
        }

        Assert.Equal(expected, settings.ResponseRateLimitFor(headers, 0));
    }

    private static FractionalPercent Full() => new() { Numerator = 100 };

    private static FaultSettings Compile(HTTPFault config)
    {
        var errors = new ConfigErrors();
        var settings = FaultSettings.Compile(config, "f", errors);
        Assert.Empty(errors.Errors);
        return Assert.IsType<FaultSettings>(settings);
    }
}
