using Legate.Router.Matching;
using static Legate.Tests.Router.Matching.RouteTestSupport;

namespace Legate.Tests.Router.Matching;

public sealed class ExplainTests
{
    private const string Table = """
          - name: by-path
            match: { path: /exact }
            direct_response: { status: 200 }
          - name: by-connect
            match: { connect_matcher: {} }
            direct_response: { status: 200 }
          - name: by-header
            match: { prefix: /, headers: [{ name: x-env, string_match: { exact: canary } }] }
            direct_response: { status: 200 }
          - name: by-missing-header
            match: { prefix: /, headers: [{ name: x-missing, present_match: true }] }
            direct_response: { status: 200 }
          - name: by-query
            match: { prefix: /, query_parameters: [{ name: debug, present_match: true }] }
            direct_response: { status: 200 }
          - name: by-fraction
            match: { prefix: /, runtime_fraction: { default_value: { numerator: 10 }, runtime_key: k } }
            direct_response: { status: 200 }
          - name: by-grpc
            match: { prefix: /, grpc: {} }
            direct_response: { status: 200 }
          - name: by-tls
            match: { prefix: /, tls_context: { presented: true } }
            direct_response: { status: 200 }
          - name: by-regex
            match: { safe_regex: { regex: '/v[0-9]+/.*' }, case_sensitive: false }
            direct_response: { status: 200 }
          - name: insensitive
            match: { prefix: /API, case_sensitive: false }
            direct_response: { status: 200 }
          - name: last
            match: { prefix: /api }
            direct_response: { status: 200 }
        """;

    [Fact]
    public void RecordsWhyEveryEarlierRouteMissed()
    {
        var routes = Routes(Table);
        var reasons = new List<RouteMissReason>();
        var headers = new HeaderListLookup().Add("x-env", "stable").Add("content-type", "application/json");
        var winner = routes.MatchWithTrace(Get("/api/x?debugx=1", headers, random: 57), reasons);

        Assert.Equal("insensitive", winner?.Name);
        Assert.Equal(
            new[]
            {
                new RouteMissReason(0, "by-path", RouteMissKind.Path, "path '/exact' does not match path '/api/x'"),
                new RouteMissReason(1, "by-connect", RouteMissKind.ConnectMethod, "method GET is not CONNECT"),
                new RouteMissReason(2, "by-header", RouteMissKind.Header, "header x-env string_match exact 'canary' (value 'stable')"),
                new RouteMissReason(3, "by-missing-header", RouteMissKind.Header, "header x-missing present (header missing)"),
                new RouteMissReason(4, "by-query", RouteMissKind.QueryParameter, "query parameter debug present"),
                new RouteMissReason(5, "by-fraction", RouteMissKind.RuntimeFraction, "runtime_fraction 10/100 not selected (random value % denominator = 57)"),
                new RouteMissReason(6, "by-grpc", RouteMissKind.Grpc, "content-type is not application/grpc"),
                new RouteMissReason(7, "by-tls", RouteMissKind.TlsContext, "tls_context: certificate presented=false, validated=false"),
                new RouteMissReason(8, "by-regex", RouteMissKind.Path, "safe_regex '/v[0-9]+/.*' does not match path '/api/x'"),
            },
            reasons);
    }

    [Fact]
    public void NoMatchRecordsEveryRoute()
    {
        var routes = Routes(Table);
        var reasons = new List<RouteMissReason>();
        Assert.Null(routes.MatchWithTrace(Get("/zzz", random: 50), reasons));
        Assert.Equal(11, reasons.Count);
        Assert.Equal(new RouteMissReason(9, "insensitive", RouteMissKind.Path, "prefix '/API' (case-insensitive) does not match path '/zzz'"), reasons[9]);
        Assert.Equal(new RouteMissReason(10, "last", RouteMissKind.Path, "prefix '/api' does not match path '/zzz'"), reasons[10]);
    }

    [Fact]
    public void WithoutAListTraceIsPlainMatching()
    {
        var routes = Routes(Table);
        Assert.Equal("by-path", routes.MatchWithTrace(Get("/exact"), null)?.Name);
        Assert.Equal("by-header", routes.MatchWithTrace(Get("/", new HeaderListLookup().Add("X-Env", "canary")), null)?.Name);
    }
}
