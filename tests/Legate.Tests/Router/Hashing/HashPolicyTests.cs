using System.IO.Hashing;
using System.Net;
using System.Text;
using Envoy.Config.Route.V3;
using Legate.Config;
using Legate.Http.Http1;
using Legate.Router;
using Legate.Router.Hashing;
using RouteHashPolicy = Envoy.Config.Route.V3.RouteAction.Types.HashPolicy;

namespace Legate.Tests.Router.Hashing;

/// <summary>hash_policy: what each policy hashes (xxHash64, as Envoy) and how results combine.</summary>
public sealed class HashPolicyTests
{
    private static readonly IPEndPoint s_client = new(IPAddress.Parse("10.1.2.3"), 4567);

    private static ulong Xx(string value) => XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(value));

    private static HashPolicy Compile(params RouteHashPolicy[] policies)
    {
        var list = new Google.Protobuf.Collections.RepeatedField<RouteHashPolicy>();
        list.AddRange(policies);
        var errors = new ConfigErrors();
        var compiled = HashPolicy.Compile(list, "hash_policy", errors)!;
        Assert.Empty(errors.Errors);
        return compiled;
    }

    private static RouteHashPolicy Header(string name, bool terminal = false) =>
        new() { Header = new RouteHashPolicy.Types.Header { HeaderName = name }, Terminal = terminal };

    private static HttpRequestHead Request(string path = "/", params (string, string)[] headers)
    {
        var head = new HttpRequestHead();
        head.SetPath(path);
        foreach (var (name, value) in headers)
        {
            head.Headers.Add(name, value);
        }

        return head;
    }

    [Fact]
    public void AHeaderHashesItsValue()
    {
        var policy = Compile(Header("x-user"));

        Assert.Equal(Xx("alice"), policy.Generate(s_client, Request("/", ("x-user", "alice")), out _));
        Assert.Null(policy.Generate(s_client, Request(), out _));
    }

    [Fact]
    public void SeveralValuesOfOneHeaderHashSortedTogether()
    {
        var policy = Compile(Header("x-k"));

        Assert.Equal(policy.Generate(s_client, Request("/", ("x-k", "b"), ("x-k", "a")), out _), policy.Generate(s_client, Request("/", ("x-k", "a"), ("x-k", "b")), out _));
    }

    [Fact]
    public void PoliciesCombineByRotatingAndXoring()
    {
        var policy = Compile(Header("x-a"), Header("x-b"));
        var a = Xx("1");
        var b = Xx("2");

        Assert.Equal(((a << 1) | (a >> 63)) ^ b, policy.Generate(s_client, Request("/", ("x-a", "1"), ("x-b", "2")), out _));

        // A policy without a value is skipped.
        Assert.Equal(b, policy.Generate(s_client, Request("/", ("x-b", "2")), out _));
    }

    [Fact]
    public void ATerminalPolicyThatHashedStopsTheWalk()
    {
        var policy = Compile(Header("x-a", terminal: true), Header("x-b"));

        Assert.Equal(Xx("1"), policy.Generate(s_client, Request("/", ("x-a", "1"), ("x-b", "2")), out _));
        Assert.Equal(Xx("2"), policy.Generate(s_client, Request("/", ("x-b", "2")), out _));
    }

    [Fact]
    public void FilterStateNeverHashesYetAndIsSkipped()
    {
        // No filter sets filter state objects yet, so the key is never found: as Envoy with the key
        // absent, the policy yields nothing and the next one decides.
        var filterState = new RouteHashPolicy { FilterState = new RouteHashPolicy.Types.FilterState { Key = "envoy.hash.key" }, Terminal = true };
        Assert.Null(Compile(filterState).Generate(s_client, Request("/", ("x-a", "1")), out _));
        Assert.Equal(Xx("1"), Compile(filterState, Header("x-a")).Generate(s_client, Request("/", ("x-a", "1")), out _));
    }

    [Fact]
    public void SourceIpAndQueryParameter()
    {
        var policy = Compile(new RouteHashPolicy { ConnectionProperties = new RouteHashPolicy.Types.ConnectionProperties { SourceIp = true } });
        Assert.Equal(Xx("10.1.2.3"), policy.Generate(s_client, Request(), out _));

        var query = Compile(new RouteHashPolicy { QueryParameter = new RouteHashPolicy.Types.QueryParameter { Name = "user" } });
        Assert.Equal(Xx("bob"), query.Generate(s_client, Request("/x?a=1&user=bob&user=eve"), out _));
        Assert.Null(query.Generate(s_client, Request("/x?username=bob"), out _));
    }

    [Fact]
    public void APresentCookieIsHashedAndAMissingOneWithTtlIsGenerated()
    {
        var policy = Compile(new RouteHashPolicy
        {
            Cookie = new RouteHashPolicy.Types.Cookie { Name = "sticky", Ttl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromHours(1)), Path = "/" },
        });

        Assert.Equal(Xx("abc"), policy.Generate(s_client, Request("/", ("cookie", "a=1; sticky=\"abc\"")), out var none));
        Assert.Null(none);

        var hash = policy.Generate(s_client, Request(), out var setCookie);
        var generated = Xx("10.1.2.3:4567").ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal($"sticky=\"{generated}\"; Max-Age=3600; Path=/; HttpOnly", setCookie);
        Assert.Equal(Xx(generated), hash);

        // Without a ttl a missing cookie gives no hash and no cookie.
        var noTtl = Compile(new RouteHashPolicy { Cookie = new RouteHashPolicy.Types.Cookie { Name = "sticky" } });
        Assert.Null(noTtl.Generate(s_client, Request(), out var noCookie));
        Assert.Null(noCookie);
    }

    [Theory]
    [InlineData("1S", 1000)]
    [InlineData("250m", 250)]
    [InlineData("2M", 120000)]
    [InlineData("1H", 3600000)]
    [InlineData("5000u", 5)]
    [InlineData("3000000n", 3)]
    public void GrpcTimeoutUnits(string value, int milliseconds) =>
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), GrpcTimeout.Parse(value));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("10")]
    [InlineData("123456789S")]
    [InlineData("1x")]
    public void MalformedGrpcTimeoutsAreIgnored(string? value) => Assert.Null(GrpcTimeout.Parse(value));
}
