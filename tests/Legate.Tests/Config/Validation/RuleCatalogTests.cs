using Envoy.Config.Core.V3;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Legate.Config;
using Legate.Config.Validation;
using Validate;

namespace Legate.Tests.Config.Validation;

/// <summary>How the rules are read from the descriptors, checked across the whole API snapshot.</summary>
public sealed class RuleCatalogTests
{
    [Fact]
    public void FieldRulesComeBackAsParsedExtensions()
    {
        // Guards the runtime: if extensions ever came back as unknown fields, this would be null.
        var port = SocketAddress.Descriptor.FindFieldByName("port_value");
        var rules = RuleOptions.ForField(port);
        Assert.NotNull(rules);
        Assert.Equal(FieldRules.TypeOneofCase.Uint32, rules.TypeCase);
        Assert.Equal(65535u, rules.Uint32.Lte);
        Assert.False(rules.Uint32.HasGt);
    }

    [Fact]
    public void OneofRequiredIsRead()
    {
        var oneofs = SocketAddress.Descriptor.Oneofs;
        Assert.True(RuleOptions.IsRequired(oneofs.Single(o => o.Name == "port_specifier")));
        Assert.False(RuleOptions.IsRequired(Envoy.Config.Cluster.V3.Cluster.Descriptor.Oneofs.Single(o => o.Name == "lb_config")));
    }

    [Fact]
    public void DisabledAndIgnoredMessagesAreSkipped()
    {
        Assert.False(RuleOptions.IsSkipped(new MessageOptions()));

        var disabled = new MessageOptions();
        disabled.SetExtension(ValidateExtensions.Disabled, true);
        Assert.True(RuleOptions.IsSkipped(disabled));

        // (validate.ignored) = 1072 has no generated extension in this snapshot: it arrives as an unknown field.
        var bytes = new byte[] { 0x80, 0x43, 0x01 }; // tag (1072 << 3 | varint) = 8576, value true
        Assert.Equal(8576u, WireFormat.MakeTag(RuleOptions.IgnoredFieldNumber, WireFormat.WireType.Varint));
        Assert.True(RuleOptions.IsSkipped(MessageOptions.Parser.ParseFrom(bytes)));
        Assert.False(RuleOptions.IsSkipped(MessageOptions.Parser.ParseFrom(new byte[] { 0x80, 0x43, 0x00 })));
    }

    [Fact]
    public void EveryRuleOfTheSnapshotDigestsIntoChecks()
    {
        var problems = new List<string>();
        var fieldsWithRules = 0;
        foreach (var message in ApiTypes.Messages.Values)
        {
            Assert.NotNull(MessagePlan.For(message));
            foreach (var field in message.Fields.InDeclarationOrder())
            {
                if (RuleOptions.ForField(field) is not { } rules)
                {
                    continue;
                }

                fieldsWithRules++;
                if (field.IsMap)
                {
                    Expect(rules.Map?.Keys, field.MessageType.FindFieldByNumber(1), field.FullName + " keys");
                    Expect(rules.Map?.Values, field.MessageType.FindFieldByNumber(2), field.FullName + " values");
                }
                else if (field.IsRepeated)
                {
                    Expect(rules.Repeated?.Items, field, field.FullName + " items");
                }
                else
                {
                    Expect(rules, field, field.FullName);
                }
            }
        }

        // Every typed rule in the snapshot yields checks (no kind mismatch, no pattern .NET rejects).
        Assert.Empty(problems);
        Assert.True(fieldsWithRules > 900, $"only {fieldsWithRules} annotated fields found");

        void Expect(FieldRules? rules, FieldDescriptor valueField, string where)
        {
            if (rules is null || rules.TypeCase is FieldRules.TypeOneofCase.None or FieldRules.TypeOneofCase.Repeated or FieldRules.TypeOneofCase.Map)
            {
                return;
            }

            if (RuleFactory.Create(rules, valueField) is null && !RuleFactory.IsRequired(rules))
            {
                problems.Add($"{where}: {rules}");
            }

            if (rules.TypeCase == FieldRules.TypeOneofCase.String && rules.String.HasPattern && Re2Regex.Get(rules.String.Pattern) is null)
            {
                problems.Add($"{where}: pattern does not compile");
            }
        }
    }

    [Fact]
    public void TypesWithoutRulesBelowThemAreNotVisited()
    {
        Assert.False(MessagePlan.For(Google.Protobuf.WellKnownTypes.Struct.Descriptor).NeedsVisit);
        Assert.False(MessagePlan.For(Locality.Descriptor).NeedsVisit);

        // Metadata has no rules of its own, but its typed_filter_metadata holds Anys.
        Assert.True(MessagePlan.For(Metadata.Descriptor).NeedsVisit);
        Assert.True(MessagePlan.For(Envoy.Config.Bootstrap.V3.Bootstrap.Descriptor).NeedsVisit);
        Assert.True(MessagePlan.For(Google.Protobuf.WellKnownTypes.Any.Descriptor).NeedsVisit);
    }

    [Fact]
    public void PlansAreCachedPerDescriptor()
    {
        Assert.Same(MessagePlan.For(SocketAddress.Descriptor), MessagePlan.For(SocketAddress.Descriptor));
        var plan = MessagePlan.For(SocketAddress.Descriptor);
        Assert.Equal(["protocol", "address", "port_value"], plan.Fields.Select(f => f.Name));
        Assert.Equal("port_specifier", Assert.Single(plan.RequiredOneofs).Name);
    }

    [Fact]
    public void CollectionIgnoreEmptyAndCountWording()
    {
        var list = CollectionRule.ForList(new RepeatedRules { MinItems = 2, MaxItems = 4, IgnoreEmpty = true });
        Assert.NotNull(list);
        Assert.False(list.Applies(Array.Empty<int>()));
        var errors = new ConfigErrors();
        list.CheckCount(new[] { 1 }, "xs", errors);
        Assert.Equal("value must contain between 2 and 4 item(s), inclusive", Assert.Single(errors.Errors).Message);

        var map = CollectionRule.ForMap(new MapRules { MaxPairs = 1 });
        Assert.NotNull(map);
        errors = new ConfigErrors();
        map.CheckCount(new Dictionary<string, int> { ["a"] = 1, ["b"] = 2 }, "m", errors);
        Assert.Equal("m: value must contain no more than 1 pair(s)", Assert.Single(errors.Errors).ToString());

        Assert.Null(CollectionRule.ForList(new RepeatedRules { Items = new FieldRules() }));
    }
}
