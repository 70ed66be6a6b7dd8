using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Http;
using Legate.Http.Formatter;
using Legate.Http.Http1;

namespace Legate.Tests.Http.Formatter;

/// <summary>Every command operator, on a stream whose facts the test sets.</summary>
public sealed class CommandOperatorTests
{
    private static readonly DateTimeOffset Start = new DateTimeOffset(2024, 3, 9, 7, 5, 4, TimeSpan.Zero).AddTicks(1234567);

    [Theory]
    [InlineData("%START_TIME%", "2024-03-09T07:05:04.123Z")]
    [InlineData("%START_TIME(%Y/%m/%d %H:%M:%S)%", "2024/03/09 07:05:04")]
    [InlineData("%START_TIME(%s)%", "1709967904")]
    [InlineData("%START_TIME(%f)%", "123456700")]
    [InlineData("%START_TIME(%3f)%", "123")]
    [InlineData("%START_TIME(%6f)%", "123456")]
    [InlineData("%START_TIME(%9f)%", "123456700")]
    [InlineData("%START_TIME(%s.%3f)%", "1709967904.123")]
    [InlineData("%START_TIME(%E3S|%E*S|%z|%j|%b %a|%%)%", "04.123|04.1234567|+0000|069|Mar Sat|%")]
    [InlineData("%REQ(:METHOD)% %REQ(:PATH)% %REQ(:AUTHORITY)% %REQ(:SCHEME)%", "POST /p?q=1 example.com http")]
    [InlineData("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "/p?q=1")]
    [InlineData("%REQ(X-Missing?User-Agent)%", "curl/8")]
    [InlineData("%REQ(USER-AGENT):3%", "cur")]
    [InlineData("%REQ(x-missing)%", "-")]
    [InlineData("%RESP(content-type)% %RESP(x-missing?x-resp)%", "text/plain r")]
    [InlineData("%TRAILER(grpc-message)% %TRAILER(grpc-message):4%", "all good all ")]
    [InlineData("%RESPONSE_CODE%", "503")]
    [InlineData("%RESPONSE_CODE_DETAILS%", "upstream_reset_before_response_started{connection_failure}")]
    [InlineData("%CONNECTION_TERMINATION_DETAILS%", "closed_by_test")]
    [InlineData("%RESPONSE_FLAGS%", "UF,URX")]
    [InlineData("%RESPONSE_FLAGS_LONG%", "UpstreamConnectionFailure,UpstreamRetryLimitExceeded")]
    [InlineData("%BYTES_RECEIVED% %BYTES_SENT%", "11 22")]
    [InlineData("%DURATION% %REQUEST_DURATION% %REQUEST_TX_DURATION% %RESPONSE_DURATION% %RESPONSE_TX_DURATION%", "50 10 15 30 20")]
    [InlineData("%PROTOCOL% %UPSTREAM_PROTOCOL%", "HTTP/1.1 HTTP/2")]
    [InlineData("%UPSTREAM_HOST% %UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "10.0.0.2:8080 10.0.0.2")]
    [InlineData("%UPSTREAM_CLUSTER%", "-")]
    [InlineData("%UPSTREAM_LOCAL_ADDRESS% %UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%", "10.0.0.1:40000 10.0.0.1")]
    [InlineData("%UPSTREAM_TRANSPORT_FAILURE_REASON%", "delayed connect error: 111")]
    [InlineData("%UPSTREAM_REQUEST_ATTEMPT_COUNT%", "3")]
    [InlineData("%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_REMOTE_PORT%", "192.0.2.7:5555 192.0.2.7 5555")]
    [InlineData("%DOWNSTREAM_DIRECT_REMOTE_ADDRESS% %DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%", "[::1]:6000 ::1")]
    [InlineData("%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_PORT%", "127.0.0.1:10000 127.0.0.1 10000")]
    [InlineData("%REQUESTED_SERVER_NAME%", "api.example.com")]
    [InlineData("%ROUTE_NAME%", "route-1")]
    [InlineData("%VIRTUAL_CLUSTER_NAME%", "vc")]
    [InlineData("%CONNECTION_ID%", "42")]
    [InlineData("%STREAM_ID%", "8c7e1c9a-3f8e-4b2a-9d2f-0c5b1e2a3d4f")]
    [InlineData("%GRPC_STATUS% %GRPC_STATUS(SNAKE_STRING)% %GRPC_STATUS(NUMBER)% %GRPC_STATUS_NUMBER%", "Unavailable UNAVAILABLE 14 14")]
    [InlineData("%DYNAMIC_METADATA(com.test:user)% %DYNAMIC_METADATA(com.test:nested:n)% %DYNAMIC_METADATA(com.test:missing)%", "alice 3 -")]
    [InlineData("%DYNAMIC_METADATA(com.test:user):2%", "al")]
    [InlineData("%FILTER_STATE(my.key)% %FILTER_STATE(my.key:PLAIN)% %FILTER_STATE(other)%", "value value -")]
    [InlineData("%ENVIRONMENT(LEGATE_TEST_ENV)% %ENVIRONMENT(LEGATE_TEST_ENV):2% %ENVIRONMENT(LEGATE_TEST_UNSET)%", "env-value en -")]
    [InlineData("100%% %LOCAL_REPLY_BODY%", "100% local body")]
    public void OperatorPrintsEnvoysValue(string format, string expected)
    {
        Environment.SetEnvironmentVariable("LEGATE_TEST_ENV", "env-value");
        Assert.Equal(expected, Format(format, Context()));
    }

    [Fact]
    public void HostnameIsTheMachineName() =>
        Assert.Equal(Dns.GetHostName(), Format("%HOSTNAME%", Context()));

    [Fact]
    public void UpstreamClusterNamesTheCluster()
    {
        var cluster = Legate.Tests.Upstream.UpstreamTestConfigs.Build("""
            name: payments
            connect_timeout: 1s
            load_assignment: { cluster_name: payments, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 1 } } } }] }] }
            """);
        var context = Context();
        context.Info.UpstreamCluster = cluster;
        Assert.Equal("payments", Format("%UPSTREAM_CLUSTER%", context));
    }

    [Fact]
    public void MissingValuesPrintDashesAndAConnectionContextHasNoRequestFields()
    {
        var info = new StreamInfo();
        info.Reset(Start, Stopwatch.GetTimestamp());
        var text = Format("%REQ(:METHOD)% %PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_HOST% %GRPC_STATUS% %DYNAMIC_METADATA(a)% %CONNECTION_ID% %REQUEST_DURATION%", new FormatterContext(info));
        Assert.Equal("- - 0 - - - - - -", text);
    }

    [Fact]
    public void GrpcStatusFallsBackToTheHttpStatusForGrpcRequestsOnly()
    {
        var context = Context(grpcTrailers: false);
        Assert.Equal("Unavailable", Format("%GRPC_STATUS%", context));

        var notGrpc = Context(grpcTrailers: false, grpcRequest: false);
        Assert.Equal("-", Format("%GRPC_STATUS%", notGrpc));
    }

    [Fact]
    public void JsonKeepsTypesForNumbersAndMetadata()
    {
        var errors = new ConfigErrors();
        var format = new Struct();
        format.Fields["code"] = Value.ForString("%RESPONSE_CODE%");
        format.Fields["meta"] = Value.ForString("%DYNAMIC_METADATA(com.test)%");
        format.Fields["count"] = Value.ForString("%DYNAMIC_METADATA(com.test:nested:n)%");
        format.Fields["grpc"] = Value.ForString("%GRPC_STATUS_NUMBER%");
        format.Fields["mixed"] = Value.ForString("%RESPONSE_CODE%/%PROTOCOL%");
        var formatter = SubstitutionFormatter.CompileJson(format, "f", errors, omitEmpty: false);
        Assert.Empty(errors.Errors);

        var line = formatter!.Format(Context());
        Assert.EndsWith("\n", line, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(line);
        Assert.Equal(503, json.RootElement.GetProperty("code").GetInt32());
        Assert.Equal("alice", json.RootElement.GetProperty("meta").GetProperty("user").GetString());
        Assert.Equal(3, json.RootElement.GetProperty("count").GetDouble());
        Assert.Equal(14, json.RootElement.GetProperty("grpc").GetInt32());
        Assert.Equal("503/HTTP/1.1", json.RootElement.GetProperty("mixed").GetString());
    }

    [Fact]
    public void DefaultFormatIsEnvoys() =>
        Assert.Equal(
            "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n",
            SubstitutionFormatter.DefaultFormat);

    [Theory]
    [InlineData("%BOGUS%", "command operator not supported yet")]
    [InlineData("%REQ%", "needs a header name")]
    [InlineData("%RESPONSE_CODE(x)%", "takes no argument")]
    [InlineData("%REQ(a):0%", "invalid length")]
    [InlineData("%FILTER_STATE(k:JSON)%", "is not PLAIN or TYPED")]
    [InlineData("50% off", "unterminated command operator")]
    public void BadOperatorsAreErrors(string format, string message)
    {
        var errors = new ConfigErrors();
        Assert.Null(SubstitutionFormatter.CompileText(format, "x.format", errors, omitEmpty: false));
        var error = Assert.Single(errors.Errors);
        Assert.Equal("x.format", error.Path);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    private static string Format(string format, FormatterContext context)
    {
        var errors = new ConfigErrors();
        var formatter = SubstitutionFormatter.CompileText(format, "f", errors, omitEmpty: false);
        Assert.Empty(errors.Errors);
        return formatter!.Format(context);
    }

    private static FormatterContext Context(bool grpcTrailers = true, bool grpcRequest = true)
    {
        var start = Stopwatch.GetTimestamp();
        long At(int ms) => start + (ms * Stopwatch.Frequency / 1000);
        var info = new StreamInfo();
        info.Reset(Start, start);
        info.LastDownstreamRxByteReceived = At(10);
        info.FirstUpstreamTxByteSent = At(12);
        info.LastUpstreamTxByteSent = At(15);
        info.FirstUpstreamRxByteReceived = At(30);
        info.LastDownstreamTxByteSent = At(50);
        info.EndTimestamp = At(50);
        info.ResponseCode = 503;
        info.ResponseCodeDetails = "upstream_reset_before_response_started{connection_failure}";
        info.ConnectionTerminationDetails = "closed_by_test";
        info.SetResponseFlag(ResponseFlags.UpstreamConnectionFailure);
        info.SetResponseFlag(ResponseFlags.UpstreamRetryLimitExceeded);
        info.BytesReceived = 11;
        info.BytesSent = 22;
        info.Protocol = "HTTP/1.1";
        info.UpstreamProtocol = "HTTP/2";
        info.UpstreamRemoteAddress = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 8080);
        info.UpstreamLocalAddress = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 40000);
        info.UpstreamTransportFailureReason = "delayed connect error: 111";
        info.AttemptCount = 3;
        info.DownstreamRemoteAddress = new IPEndPoint(IPAddress.Parse("192.0.2.7"), 5555);
        info.DownstreamDirectRemoteAddress = new IPEndPoint(IPAddress.IPv6Loopback, 6000);
        info.DownstreamLocalAddress = new IPEndPoint(IPAddress.Loopback, 10000);
        info.RequestedServerName = "api.example.com";
        info.RouteName = "route-1";
        info.VirtualClusterName = "vc";
        info.ConnectionId = 42;
        info.RequestId = "8c7e1c9a-3f8e-4b2a-9d2f-0c5b1e2a3d4f";
        var nested = new Struct();
        nested.Fields["n"] = Value.ForNumber(3);
        var ns = new Struct();
        ns.Fields["user"] = Value.ForString("alice");
        ns.Fields["nested"] = Value.ForStruct(nested);
        info.DynamicMetadata = new Envoy.Config.Core.V3.Metadata();
        info.DynamicMetadata.FilterMetadata["com.test"] = ns;
        info.FilterState = new Dictionary<string, string> { ["my.key"] = "value" };

        var request = new HttpRequestHead();
        request.SetMethod("POST");
        request.SetPath("/p?q=1");
        request.Headers.Add(KnownHeader.Host, "example.com");
        request.Headers.Add("user-agent", "curl/8");
        if (grpcRequest)
        {
            request.Headers.Add(KnownHeader.ContentType, "application/grpc");
        }

        var response = new HttpResponseHead { StatusCode = 503 };
        response.Headers.Add(KnownHeader.ContentType, "text/plain");
        response.Headers.Add("x-resp", "r");
        var trailers = new HttpHeaderMap();
        if (grpcTrailers)
        {
            trailers.Add("grpc-status", "14");
            trailers.Add("grpc-message", "all good");
        }

        return new FormatterContext(info, request, response, trailers, "local body");
    }
}
