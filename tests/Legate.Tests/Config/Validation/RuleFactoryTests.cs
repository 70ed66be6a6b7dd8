using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Config.Validation;
using Validate;
using static Legate.Tests.Config.Validation.ValidationAssert;

namespace Legate.Tests.Config.Validation;

/// <summary>
/// Rule kinds and options the Envoy snapshot does not use (or uses too sparsely to reach every
/// branch), applied to values of a field of the matching type.
/// </summary>
public sealed class RuleFactoryTests
{
    private static ValueRule? Rule(FieldRules rules, string field) => RuleFactory.Create(rules, TestKinds.Field(field));

    private static Duration Seconds(double s) => Duration.FromTimeSpan(TimeSpan.FromSeconds(s));

    // ---- numbers ---------------------------------------------------------------------------

    [Fact]
    public void ReversedLtGtMeansOutsideTheClosedRange()
    {
        var rule = Rule(new FieldRules { Sint32 = new SInt32Rules { Lt = 10, Gt = 20 } }, "sint32");
        Assert.Equal(["value must be outside range [10, 20]"], Check(rule, 10));
        Assert.Equal(["value must be outside range [10, 20]"], Check(rule, 20));
        Assert.Empty(Check(rule, 9));
        Assert.Empty(Check(rule, 21));
    }

    [Fact]
    public void ReversedLteGteMeansOutsideTheOpenRange()
    {
        var rule = Rule(new FieldRules { Sint64 = new SInt64Rules { Lte = 10, Gte = 20 } }, "sint64");
        Assert.Equal(["value must be outside range (10, 20)"], Check(rule, 15L));
        Assert.Empty(Check(rule, 10L));
        Assert.Empty(Check(rule, 20L));
    }

    [Fact]
    public void MixedReversedBounds()
    {
        var ltGte = Rule(new FieldRules { Fixed32 = new Fixed32Rules { Lt = 10, Gte = 20 } }, "fixed32");
        Assert.Equal(["value must be outside range [10, 20)"], Check(ltGte, 10u));
        Assert.Empty(Check(ltGte, 20u));

        var lteGt = Rule(new FieldRules { Fixed64 = new Fixed64Rules { Lte = 10, Gt = 20 } }, "fixed64");
        Assert.Equal(["value must be outside range (10, 20]"], Check(lteGt, 20ul));
        Assert.Empty(Check(lteGt, 10ul));
    }

    [Fact]
    public void LtWinsOverLteAndGtOverGte()
    {
        var rule = Rule(new FieldRules { Sfixed32 = new SFixed32Rules { Lt = 5, Lte = 100, Gt = 1, Gte = -100 } }, "sfixed32");
        Assert.Equal(["value must be inside range (1, 5)"], Check(rule, 5));
        Assert.Equal(["value must be inside range (1, 5)"], Check(rule, 1));
        Assert.Empty(Check(rule, 3));
    }

    [Fact]
    public void SingleBoundsAndConst()
    {
        Assert.Equal(["value must be less than 0"], Check(Rule(new FieldRules { Sfixed64 = new SFixed64Rules { Lt = 0 } }, "sfixed64"), 0L));
        Assert.Equal(["value must be greater than or equal to 7"], Check(Rule(new FieldRules { Uint64 = new UInt64Rules { Gte = 7 } }, "uint64"), 6ul));
        Assert.Equal(["value must equal 42"], Check(Rule(new FieldRules { Int64 = new Int64Rules { Const = 42 } }, "int64"), 41L));
    }

    [Fact]
    public void InAndNotIn()
    {
        var rule = Rule(new FieldRules { Uint32 = new UInt32Rules { In = { 1, 2, 3 }, NotIn = { 2 } } }, "uint32");
        Assert.Equal(["value must be in list [1, 2, 3]"], Check(rule, 4u));
        Assert.Equal(["value must not be in list [2]"], Check(rule, 2u));
        Assert.Empty(Check(rule, 3u));
    }

    [Fact]
    public void EveryViolatedRuleIsReported()
    {
        var rule = Rule(new FieldRules { Int32 = new Int32Rules { Const = 3, Gt = 5, NotIn = { 1 } } }, "int32");
        Assert.Equal(["value must equal 3", "value must be greater than 5", "value must not be in list [1]"], Check(rule, 1));
    }

    [Fact]
    public void IgnoreEmptySkipsZero()
    {
        var rule = Rule(new FieldRules { Int32 = new Int32Rules { Gt = 5, IgnoreEmpty = true } }, "int32");
        Assert.Empty(Check(rule, 0));
        Assert.Equal(["value must be greater than 5"], Check(rule, 3));
    }

    [Fact]
    public void FloatingPointBoundsAndNaN()
    {
        var rule = Rule(new FieldRules { Double = new DoubleRules { Gte = 0.5, Lt = 1.25 } }, "double");
        Assert.Equal(["value must be inside range [0.5, 1.25)"], Check(rule, 1.25));
        Assert.Empty(Check(rule, double.NaN)); // comparisons with NaN are false, as in PGV

        var f = Rule(new FieldRules { Float = new FloatRules { Const = 0.1f } }, "float");
        Assert.Equal(["value must equal 0.1"], Check(f, 0.2f));
    }

    [Fact]
    public void BoolConstOnWrapper()
    {
        var rule = Rule(new FieldRules { Bool = new BoolRules { Const = false } }, "bool_value");
        Assert.Equal(["value must equal false"], Check(rule, true));
        Assert.Empty(Check(rule, false));
    }

    [Fact]
    public void ScalarRulesOnWrapperApplyToTheWrappedValue()
    {
        var rule = Rule(new FieldRules { Uint32 = new UInt32Rules { Gte = 1 } }, "uint32_value");
        Assert.Equal(["value must be greater than or equal to 1"], Check(rule, 0u));
    }

    [Fact]
    public void MismatchedRuleKindYieldsNoChecks()
    {
        Assert.Null(Rule(new FieldRules { String = new StringRules { MinLen = 1 } }, "int32"));
        Assert.Null(Rule(new FieldRules { Int32 = new Int32Rules { Gt = 1 } }, "sint32"));
        Assert.Null(Rule(new FieldRules { Duration = new DurationRules { Gt = Seconds(1) } }, "timestamp"));
    }

    // ---- strings ---------------------------------------------------------------------------

    [Fact]
    public void StringConstLenAndBytes()
    {
        Assert.Equal(["value must equal \"a\\\"b\""], Check(Rule(new FieldRules { String = new StringRules { Const = "a\"b" } }, "string"), "ab"));

        var len = Rule(new FieldRules { String = new StringRules { Len = 3, LenBytes = 4 } }, "string");
        Assert.Equal(["value length must be 3 characters", "value length must be 4 bytes"], Check(len, "ab"));
        Assert.Empty(Check(len, "abé"));

        var equalMinMax = Rule(new FieldRules { String = new StringRules { MinLen = 2, MaxLen = 2 } }, "string");
        Assert.Equal(["value length must be 2 characters"], Check(equalMinMax, "abc"));

        var bytes = Rule(new FieldRules { String = new StringRules { MinBytes = 2, MaxBytes = 3 } }, "string");
        Assert.Equal(["value length must be between 2 and 3 bytes, inclusive"], Check(bytes, "éé"));
    }

    [Fact]
    public void StringAffixesAndLists()
    {
        var rule = Rule(
            new FieldRules { String = new StringRules { Prefix = "/api", Suffix = ".json", Contains = "v1", NotContains = "..", NotIn = { "/api/v1/x.json" } } },
            "string");
        Assert.Equal(
            [
                "value does not have prefix \"/api\"",
                "value does not have suffix \".json\"",
                "value does not contain substring \"v1\"",
                "value contains substring \"..\"",
            ],
            Check(rule, "/x/../y"));
        Assert.Equal(["value must not be in list [\"/api/v1/x.json\"]"], Check(rule, "/api/v1/x.json"));
        Assert.Empty(Check(rule, "/api/v1/y.json"));
    }

    [Fact]
    public void StringIgnoreEmpty()
    {
        var rule = Rule(new FieldRules { String = new StringRules { MinLen = 3, IgnoreEmpty = true } }, "string");
        Assert.Empty(Check(rule, string.Empty));
        Assert.Equal(["value length must be at least 3 characters"], Check(rule, "ab"));
    }

    [Theory]
    [InlineData("example.com", null)]
    [InlineData("a-b.example.com.", null)]
    [InlineData("-a.com", "value must be a valid hostname (hostname parts cannot begin with hyphens)")]
    [InlineData("a-.com", "value must be a valid hostname (hostname parts cannot end with hyphens)")]
    [InlineData("a..com", "value must be a valid hostname (hostname part must be non-empty and cannot exceed 63 characters)")]
    [InlineData("a_b.com", "value must be a valid hostname (hostname parts can only contain alphanumeric characters or hyphens, got \"_\")")]
    public void Hostname(string value, string? error)
    {
        var rule = Rule(new FieldRules { String = new StringRules { Hostname = true } }, "string");
        Assert.Equal(error is null ? [] : [error], Check(rule, value));
    }

    [Theory]
    [InlineData("ops@example.com", null)]
    [InlineData("first.last+tag@mail.example.org", null)]
    [InlineData("Ops <ops@example.com>", "value must be a valid email address (invalid local part \"Ops <ops\")")]
    [InlineData("ops@-bad.com", "value must be a valid email address (hostname parts cannot begin with hyphens)")]
    [InlineData("no-at-sign", "value must be a valid email address (missing '@' or empty local part or domain)")]
    public void Email(string value, string? error)
    {
        var rule = Rule(new FieldRules { String = new StringRules { Email = true } }, "string");
        Assert.Equal(error is null ? [] : [error], Check(rule, value));
    }

    [Theory]
    [InlineData("ip", "10.0.0.1", true)]
    [InlineData("ip", "::1", true)]
    [InlineData("ip", "1", false)]
    [InlineData("ipv4", "192.168.1.255", true)]
    [InlineData("ipv4", "192.168.01.1", false)]
    [InlineData("ipv4", "256.1.1.1", false)]
    [InlineData("ipv4", "::1", false)]
    [InlineData("ipv6", "2001:db8::8a2e:370:7334", true)]
    [InlineData("ipv6", "::ffff:10.0.0.1", true)]
    [InlineData("ipv6", "fe80::1%eth0", false)]
    [InlineData("ipv6", "[::1]", false)]
    [InlineData("ipv6", "10.0.0.1", false)]
    public void IpAddresses(string kind, string value, bool valid)
    {
        var rules = new StringRules();
        var name = kind switch
        {
            "ip" => "IP",
            "ipv4" => "IPv4",
            _ => "IPv6",
        };
        switch (kind)
        {
            case "ip":
                rules.Ip = true;
                break;
            case "ipv4":
                rules.Ipv4 = true;
                break;
            default:
                rules.Ipv6 = true;
                break;
        }

        var errors = Check(Rule(new FieldRules { String = rules }, "string"), value);
        Assert.Equal(valid ? [] : [$"value must be a valid {name} address"], errors);
    }

    [Fact]
    public void UriAndUriReference()
    {
        var uri = Rule(new FieldRules { String = new StringRules { Uri = true } }, "string");
        Assert.Empty(Check(uri, "https://example.com/a?b=c"));
        Assert.Equal(["value must be a valid absolute URI"], Check(uri, "/relative/path"));
        Assert.Equal(["value must be a valid absolute URI"], Check(uri, "http://exa mple.com/"));

        var reference = Rule(new FieldRules { String = new StringRules { UriRef = true } }, "string");
        Assert.Empty(Check(reference, "/relative/path?x=1"));
        Assert.Empty(Check(reference, "https://example.com"));
        Assert.Equal(["value must be a valid URI reference"], Check(reference, "/a b"));
    }

    [Fact]
    public void AddressIsHostnameOrIp()
    {
        var rule = Rule(new FieldRules { String = new StringRules { Address = true } }, "string");
        Assert.Empty(Check(rule, "backend.internal"));
        Assert.Empty(Check(rule, "fd00::1"));
        Assert.Equal(["value must be a valid hostname or IP address"], Check(rule, "bad host"));
    }

    [Fact]
    public void Uuid()
    {
        var rule = Rule(new FieldRules { String = new StringRules { Uuid = true } }, "string");
        Assert.Empty(Check(rule, "123e4567-E89B-12d3-a456-426614174000"));
        Assert.Equal(["value must be a valid UUID"], Check(rule, "123e4567e89b12d3a456426614174000"));
    }

    [Fact]
    public void MapKeysAreNamedKey()
    {
        var rule = RuleFactory.Create(new FieldRules { String = new StringRules { MinLen = 2 } }, TestKinds.Field("string"), "key");
        Assert.Equal(["key length must be at least 2 characters"], Check(rule, "a"));
    }

    // ---- bytes ---------------------------------------------------------------------------

    [Fact]
    public void BytesConstListsAndLength()
    {
        var rule = Rule(
            new FieldRules { Bytes = new BytesRules { Const = ByteString.CopyFromUtf8("ok"), In = { ByteString.CopyFromUtf8("ok") }, Len = 2 } },
            "bytes");
        Assert.Equal(
            ["value must equal \"ok\"", "value must be in list [\"ok\"]", "value length must be 2 bytes"],
            Check(rule, ByteString.CopyFrom(0x00, 0xff, 0x10)));

        var notIn = Rule(new FieldRules { Bytes = new BytesRules { NotIn = { ByteString.CopyFrom(0x99) }, MinLen = 1, MaxLen = 3 } }, "bytes");
        Assert.Equal(["value must not be in list [\"\\x99\"]"], Check(notIn, ByteString.CopyFrom(0x99)));
        Assert.Equal(["value length must be between 1 and 3 bytes, inclusive"], Check(notIn, ByteString.CopyFrom(1, 2, 3, 4)));
    }

    [Fact]
    public void BytesAffixesAndPattern()
    {
        var affixes = Rule(
            new FieldRules { Bytes = new BytesRules { Prefix = ByteString.CopyFrom(0x99), Suffix = ByteString.CopyFromUtf8("buzz"), Contains = ByteString.CopyFromUtf8("bar") } },
            "bytes");
        Assert.Equal(
            ["value does not have prefix \"\\x99\"", "value does not have suffix \"buzz\"", "value does not contain \"bar\""],
            Check(affixes, ByteString.CopyFromUtf8("fizz")));
        Assert.Empty(Check(affixes, ByteString.CopyFrom([0x99, .. "bar buzz"u8])));

        // Bytes are matched as UTF-8, as RE2 does.
        var pattern = Rule(new FieldRules { Bytes = new BytesRules { Pattern = "^[\\x00-\\x7F]+$" } }, "bytes");
        Assert.Equal(["value does not match regex pattern \"^[\\\\x00-\\\\x7F]+$\""], Check(pattern, ByteString.CopyFromUtf8("你好")));
        Assert.Empty(Check(pattern, ByteString.CopyFromUtf8("Foo123")));
    }

    [Fact]
    public void BytesIpLengths()
    {
        var ip = Rule(new FieldRules { Bytes = new BytesRules { Ip = true } }, "bytes");
        Assert.Empty(Check(ip, ByteString.CopyFrom(192, 168, 0, 1)));
        Assert.Empty(Check(ip, ByteString.CopyFrom(new byte[16])));
        Assert.Equal(["value must be a valid IP address"], Check(ip, ByteString.CopyFromUtf8("foobar")));

        var v4 = Rule(new FieldRules { Bytes = new BytesRules { Ipv4 = true } }, "bytes");
        Assert.Equal(["value must be a valid IPv4 address"], Check(v4, ByteString.CopyFrom(new byte[16])));

        var v6 = Rule(new FieldRules { Bytes = new BytesRules { Ipv6 = true, IgnoreEmpty = true } }, "bytes");
        Assert.Equal(["value must be a valid IPv6 address"], Check(v6, ByteString.CopyFrom(192, 168, 0, 1)));
        Assert.Empty(Check(v6, ByteString.Empty));
    }

    // ---- enum ---------------------------------------------------------------------------

    [Fact]
    public void EnumConstAndInNameTheValues()
    {
        var rule = Rule(new FieldRules { Enum = new EnumRules { Const = 2, In = { 0, 2, 7 } } }, "color");
        Assert.Equal(["value must equal BLUE", "value must be in list [RED, BLUE, 7]"], Check(rule, 1));
        Assert.Empty(Check(rule, 2));
    }

    // ---- durations and timestamps ------------------------------------------------------------

    [Fact]
    public void DurationConstAndLists()
    {
        var rule = Rule(new FieldRules { Duration = new DurationRules { Const = Seconds(1.5) } }, "duration");
        Assert.Equal(["value must equal 1.5s"], Check(rule, Seconds(1)));

        var lists = Rule(new FieldRules { Duration = new DurationRules { In = { Seconds(1), Seconds(0.001) }, NotIn = { Seconds(1) } } }, "duration");
        Assert.Equal(["value must be in list [1s, 0.001s]"], Check(lists, Seconds(2)));
        Assert.Equal(["value must not be in list [1s]"], Check(lists, Seconds(1)));
        Assert.Empty(Check(lists, Seconds(0.001)));
    }

    [Fact]
    public void DurationExclusiveUpperBoundAndNanosecondPrecision()
    {
        var rule = Rule(new FieldRules { Duration = new DurationRules { Lt = new Duration { Nanos = 1500 } } }, "duration");
        Assert.Equal(["value must be less than 0.0000015s"], Check(rule, new Duration { Nanos = 1500 }));
        Assert.Empty(Check(rule, new Duration { Nanos = 1499 }));
    }

    [Fact]
    public void TimestampFixedBounds()
    {
        var start = Timestamp.FromDateTime(new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        var rule = Rule(new FieldRules { Timestamp = new TimestampRules { Gt = start } }, "timestamp");
        Assert.Equal(["value must be greater than 2020-01-01T00:00:00Z"], Check(rule, start));
        Assert.Empty(Check(rule, new Timestamp { Seconds = start.Seconds, Nanos = 1 }));

        var constant = Rule(new FieldRules { Timestamp = new TimestampRules { Const = new Timestamp { Seconds = 1, Nanos = 500_000_000 } } }, "timestamp");
        Assert.Equal(["value must equal 1970-01-01T00:00:01.5Z"], Check(constant, new Timestamp()));
    }

    [Fact]
    public void TimestampRelativeToNow()
    {
        var past = Timestamp.FromDateTime(new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        var future = Timestamp.FromDateTime(new DateTime(2999, 1, 1, 0, 0, 0, DateTimeKind.Utc));

        var ltNow = Rule(new FieldRules { Timestamp = new TimestampRules { LtNow = true } }, "timestamp");
        Assert.Empty(Check(ltNow, past));
        Assert.Equal(["value must be less than now"], Check(ltNow, future));

        var gtNow = Rule(new FieldRules { Timestamp = new TimestampRules { GtNow = true } }, "timestamp");
        Assert.Equal(["value must be greater than now"], Check(gtNow, past));

        var within = Rule(new FieldRules { Timestamp = new TimestampRules { Within = Seconds(3600) } }, "timestamp");
        Assert.Equal(["value must be within 3600s of now"], Check(within, past));
        Assert.Empty(Check(within, Timestamp.FromDateTime(DateTime.UtcNow)));

        var ltNowWithin = Rule(new FieldRules { Timestamp = new TimestampRules { LtNow = true, Within = Seconds(60) } }, "timestamp");
        Assert.Equal(["value must be less than now within 60s"], Check(ltNowWithin, past));
    }

    [Fact]
    public void MalformedTimestamp()
    {
        var rule = Rule(new FieldRules { Timestamp = new TimestampRules { LtNow = true } }, "timestamp");
        Assert.Equal(["value is not a valid timestamp"], Check(rule, new Timestamp { Seconds = 1, Nanos = -1 }));
    }

    [Fact]
    public void RequiredComesFromMessageDurationTimestampAndAnyRules()
    {
        Assert.True(RuleFactory.IsRequired(new FieldRules { Message = new MessageRules { Required = true } }));
        Assert.True(RuleFactory.IsRequired(new FieldRules { Duration = new DurationRules { Required = true } }));
        Assert.True(RuleFactory.IsRequired(new FieldRules { Timestamp = new TimestampRules { Required = true } }));
        Assert.True(RuleFactory.IsRequired(new FieldRules { Any = new AnyRules { Required = true } }));
        Assert.False(RuleFactory.IsRequired(new FieldRules { Duration = new DurationRules { Gt = new Duration() } }));
    }

    // ---- Any ---------------------------------------------------------------------------

    [Fact]
    public void AnyTypeUrlInAndNotIn()
    {
        const string Router = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
        const string Buffer = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer";
        var allowed = Rule(new FieldRules { Any = new AnyRules { In = { Router } } }, "any");
        Assert.Equal(
            [$"type URL \"{Buffer}\" is not one of the allowed types [\"{Router}\"]"],
            Check(allowed, new Any { TypeUrl = Buffer }));
        Assert.Empty(Check(allowed, new Any { TypeUrl = Router }));

        var denied = Rule(new FieldRules { Any = new AnyRules { NotIn = { Buffer } } }, "any");
        Assert.Equal([$"type URL \"{Buffer}\" is not allowed"], Check(denied, new Any { TypeUrl = Buffer }));
    }
}
