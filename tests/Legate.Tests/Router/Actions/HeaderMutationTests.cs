using Envoy.Config.Core.V3;
using Google.Protobuf.Collections;
using Legate.Config;
using Legate.Http.Http1;
using Legate.Router.Actions;
using AppendAction = Envoy.Config.Core.V3.HeaderValueOption.Types.HeaderAppendAction;

namespace Legate.Tests.Router.Actions;

/// <summary>Envoy's HeaderParser rules for one level, and the order of levels.</summary>
public sealed class HeaderMutationTests
{
    private static HeaderValueOption Option(string key, string value, AppendAction action = AppendAction.AppendIfExistsOrAdd, bool keepEmpty = false) =>
        new() { Header = new HeaderValue { Key = key, Value = value }, AppendAction = action, KeepEmptyValue = keepEmpty };

    private static HeaderMutation Compile(HeaderValueOption[] adds, string[]? removes = null, ConfigErrors? errors = null)
    {
        var add = new RepeatedField<HeaderValueOption>();
        add.AddRange(adds);
        var remove = new RepeatedField<string>();
        remove.AddRange(removes ?? []);
        errors ??= new ConfigErrors();
        var mutation = HeaderMutation.Compile(add, remove, "add", "remove", errors)!;
        return mutation;
    }

    private static HttpHeaderMap Headers(params (string Name, string Value)[] headers)
    {
        var map = new HttpHeaderMap();
        foreach (var (name, value) in headers)
        {
            map.Add(name, value);
        }

        return map;
    }

    private static string[] Values(HttpHeaderMap map, string name)
    {
        var values = new List<string>();
        for (var i = 0; i < map.Count; i++)
        {
            if (string.Equals(map.GetName(i), name, StringComparison.OrdinalIgnoreCase))
            {
                values.Add(map.GetValue(i));
            }
        }

        return values.ToArray();
    }

    [Fact]
    public void AppendIfExistsOrAddAddsAnotherValue()
    {
        var headers = Headers(("x-a", "old"));
        Compile([Option("x-a", "new"), Option("x-b", "b")]).Apply(null!, headers);

        Assert.Equal(["old", "new"], Values(headers, "x-a"));
        Assert.Equal(["b"], Values(headers, "x-b"));
    }

    [Fact]
    public void AddIfAbsentLeavesAPresentHeaderAlone()
    {
        var headers = Headers(("x-a", "old"));
        Compile([Option("x-a", "new", AppendAction.AddIfAbsent), Option("x-b", "b", AppendAction.AddIfAbsent)]).Apply(null!, headers);

        Assert.Equal(["old"], Values(headers, "x-a"));
        Assert.Equal(["b"], Values(headers, "x-b"));
    }

    [Fact]
    public void OverwriteIfExistsOrAddReplacesEveryValue()
    {
        var headers = Headers(("x-a", "1"), ("x-a", "2"));
        Compile([Option("x-a", "new", AppendAction.OverwriteIfExistsOrAdd), Option("x-b", "b", AppendAction.OverwriteIfExistsOrAdd)]).Apply(null!, headers);

        Assert.Equal(["new"], Values(headers, "x-a"));
        Assert.Equal(["b"], Values(headers, "x-b"));
    }

    [Fact]
    public void OverwriteIfExistsDoesNotAdd()
    {
        var headers = Headers(("x-a", "old"));
        Compile([Option("x-a", "new", AppendAction.OverwriteIfExists), Option("x-b", "b", AppendAction.OverwriteIfExists)]).Apply(null!, headers);

        Assert.Equal(["new"], Values(headers, "x-a"));
        Assert.Empty(Values(headers, "x-b"));
    }

    [Fact]
    public void EmptyValuesAreSkippedUnlessKept()
    {
        var headers = Headers();
        Compile([Option("x-empty", ""), Option("x-kept", "", keepEmpty: true)]).Apply(null!, headers);

        Assert.Empty(Values(headers, "x-empty"));
        Assert.Equal([""], Values(headers, "x-kept"));
    }

    [Fact]
    public void RemovalsComeBeforeAdditions()
    {
        var headers = Headers(("x-a", "client"), ("x-gone", "1"));
        Compile([Option("x-a", "proxy")], ["x-a", "X-Gone"]).Apply(null!, headers);

        Assert.Equal(["proxy"], Values(headers, "x-a"));
        Assert.Empty(Values(headers, "x-gone"));
    }

    [Fact]
    public void EveryValueIsDecidedBeforeAnyIsApplied()
    {
        // The second entry's ADD_IF_ABSENT looks at the map as it was, not after the first add.
        var headers = Headers();
        Compile([Option("x-a", "1"), Option("x-a", "2", AppendAction.AddIfAbsent)]).Apply(null!, headers);

        Assert.Equal(["1", "2"], Values(headers, "x-a"));
    }

    [Fact]
    public void LegacyAppendFalseOverwrites()
    {
#pragma warning disable CS0612
        var option = new HeaderValueOption { Header = new HeaderValue { Key = "x-a", Value = "new" }, Append = false };
#pragma warning restore CS0612
        var headers = Headers(("x-a", "old"));
        Compile([option]).Apply(null!, headers);

        Assert.Equal(["new"], Values(headers, "x-a"));
    }

    [Fact]
    public void AppendTogetherWithAppendActionIsAnError()
    {
#pragma warning disable CS0612
        var option = new HeaderValueOption { Header = new HeaderValue { Key = "x-a", Value = "v" }, Append = true, AppendAction = AppendAction.AddIfAbsent };
#pragma warning restore CS0612
        var errors = new ConfigErrors();
        Compile([option], errors: errors);

        var error = Assert.Single(errors.Errors);
        Assert.Equal("add[0].append", error.Path);
    }

    [Theory]
    [InlineData(":path")]
    [InlineData("host")]
    [InlineData("Host")]
    public void PseudoHeadersAndHostCannotBeModified(string name)
    {
        var errors = new ConfigErrors();
        Compile([Option(name, "x")], [name], errors);

        Assert.Equal(["add[0].header.key", "remove[0]"], errors.Errors.Select(e => e.Path));
    }

    [Fact]
    public void UnknownCommandOperatorIsAnError()
    {
        var errors = new ConfigErrors();
        Compile([Option("x-a", "%NOT_A_THING%")], errors: errors);

        Assert.Equal("add[0].header.value", Assert.Single(errors.Errors).Path);
    }

    [Theory]
    [InlineData(false, "config")]
    [InlineData(true, "cluster")]
    public void LevelsAreOrderedSoTheRightOneWins(bool mostSpecificWins, string expected)
    {
        HeaderMutation Level(string value) => Compile([Option("x-level", value, AppendAction.OverwriteIfExistsOrAdd)]);
        var order = HeaderMutation.Order(mostSpecificWins, Level("config"), Level("vhost"), Level("route"), Level("cluster"));
        var headers = Headers();

        HeaderMutation.ApplyAll(order, null!, headers);

        Assert.Equal([expected], Values(headers, "x-level"));
    }

    [Fact]
    public void AppendedValuesFollowTheEvaluationOrder()
    {
        HeaderMutation Level(string value) => Compile([Option("x-trace", value)]);
        var headers = Headers();

        HeaderMutation.ApplyAll(HeaderMutation.Order(false, Level("config"), Level("vhost"), Level("route")), null!, headers);

        Assert.Equal(["route", "vhost", "config"], Values(headers, "x-trace"));
    }
}
