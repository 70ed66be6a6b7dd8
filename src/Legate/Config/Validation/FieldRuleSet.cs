using System.Collections;
using Google.Protobuf.Reflection;
using Validate;

namespace Legate.Config.Validation;

/// <summary>How a field holds its values.</summary>
internal enum FieldShape
{
    Singular,
    Repeated,
    Map,
}

/// <summary>
/// The digested rules of one field, built once from its options: what to check on each value,
/// and, for repeated and map fields, on the collection as a whole.
/// </summary>
internal sealed class FieldRuleSet
{
    private FieldRuleSet(FieldDescriptor field, FieldRules? rules)
    {
        Field = field;
        Name = field.Name;
        Accessor = field.Accessor;
        HasPresence = field.HasPresence;
        InOneof = field.RealContainingOneof is not null;
        if (field.IsMap)
        {
            Shape = FieldShape.Map;
            var entry = field.MessageType;
            var mapRules = rules?.TypeCase == FieldRules.TypeOneofCase.Map ? rules.Map : null;
            Key = new ValueSlot(entry.FindFieldByNumber(1), mapRules?.Keys, "key");
            Value = new ValueSlot(entry.FindFieldByNumber(2), mapRules?.Values, "value");
            Collection = mapRules is null ? null : CollectionRule.ForMap(mapRules);
        }
        else if (field.IsRepeated)
        {
            Shape = FieldShape.Repeated;
            var listRules = rules?.TypeCase == FieldRules.TypeOneofCase.Repeated ? rules.Repeated : null;
            Value = new ValueSlot(field, listRules?.Items, "value");
            Collection = listRules is null ? null : CollectionRule.ForList(listRules);
        }
        else
        {
            Shape = FieldShape.Singular;
            Value = new ValueSlot(field, rules, "value");
        }
    }

    public FieldDescriptor Field { get; }

    public string Name { get; }

    public IFieldAccessor Accessor { get; }

    public FieldShape Shape { get; }

    /// <summary>Explicit presence (message, wrapper, oneof member, proto3 <c>optional</c>): checked only when set.</summary>
    public bool HasPresence { get; }

    /// <summary>Member of a real oneof: <c>required</c> does not apply when another member is chosen.</summary>
    public bool InOneof { get; }

    /// <summary>The rules of each value (for a map: of each map value).</summary>
    public ValueSlot Value { get; }

    /// <summary>The rules of each map key; null unless <see cref="Shape"/> is <see cref="FieldShape.Map"/>.</summary>
    public ValueSlot? Key { get; }

    /// <summary>Item/pair counts, uniqueness, sparseness; null when none.</summary>
    public CollectionRule? Collection { get; }

    /// <summary>Whether anything is checked directly on this field (as opposed to below it).</summary>
    public bool HasOwnRules => Collection is not null || Value.HasOwnRules || Key?.HasOwnRules == true;

    /// <summary>A rule set for <paramref name="field"/>, or null when it has no rules and cannot lead to any.</summary>
    public static FieldRuleSet? Create(FieldDescriptor field)
    {
        var rules = RuleOptions.ForField(field);
        var set = new FieldRuleSet(field, rules);
        return set.HasOwnRules || set.Value.MessageType is not null ? set : null;
    }

    /// <summary>Whether checking this field can produce an error: its own rules, or rules somewhere below.</summary>
    public bool NeedsVisit => HasOwnRules || Value.NeedsVisit;
}

/// <summary>
/// The rules of one kind of value: a singular field's value, a list item, a map key or value.
/// For message values it also knows where to recurse.
/// </summary>
internal sealed class ValueSlot
{
    private MessagePlan? _plan;

    public ValueSlot(FieldDescriptor valueField, FieldRules? rules, string subject)
    {
        var skip = rules?.Message?.Skip == true;
        Rule = rules is null || skip ? null : RuleFactory.Create(rules, valueField, subject);
        Required = rules is not null && !skip && RuleFactory.IsRequired(rules);

        // Wrapper values come out of reflection already unwrapped (uint?, string...), so there is
        // nothing to descend into; every other message is walked unless `skip` says not to.
        if (valueField.FieldType == FieldType.Message && !skip && !IsWrapper(valueField.MessageType))
        {
            MessageType = valueField.MessageType;
        }
    }

    public ValueRule? Rule { get; }

    public bool Required { get; }

    /// <summary>The message type to descend into, or null.</summary>
    public MessageDescriptor? MessageType { get; }

    /// <summary>
    /// The plan of <see cref="MessageType"/>, fetched on first use: building it eagerly would
    /// recurse forever on self-referencing types. Races only build the same cached plan twice.
    /// </summary>
    public MessagePlan? Plan => MessageType is null ? null : _plan ??= MessagePlan.For(MessageType);

    public bool HasOwnRules => Rule is not null || Required;

    public bool NeedsVisit => HasOwnRules || Plan?.NeedsVisit == true;

    private static bool IsWrapper(MessageDescriptor type) => type.File == Google.Protobuf.WellKnownTypes.WrappersReflection.Descriptor;
}

/// <summary>RepeatedRules and MapRules about the collection itself.</summary>
internal sealed class CollectionRule
{
    private readonly ulong? _min;
    private readonly ulong? _max;
    private readonly string? _countMessage;
    private readonly bool _ignoreEmpty;

    private CollectionRule(ulong? min, ulong? max, string unit, bool ignoreEmpty)
    {
        _min = min;
        _max = max;
        _ignoreEmpty = ignoreEmpty;
        _countMessage = (min, max) switch
        {
            ({ } lo, { } hi) when lo == hi => $"value must contain exactly {lo} {unit}",
            ({ } lo, { } hi) => $"value must contain between {lo} and {hi} {unit}, inclusive",
            ({ } lo, null) => $"value must contain at least {lo} {unit}",
            (null, { } hi) => $"value must contain no more than {hi} {unit}",
            _ => null,
        };
    }

    /// <summary>Repeated: report the second and later copies of a value, each at its own index.</summary>
    public bool Unique { get; private init; }

    /// <summary>Map: a message value must be present.</summary>
    public bool NoSparse { get; private init; }

    public static CollectionRule? ForList(RepeatedRules r)
    {
        var rule = new CollectionRule(r.HasMinItems && r.MinItems > 0 ? r.MinItems : null, r.HasMaxItems ? r.MaxItems : null, "item(s)", r.IgnoreEmpty) { Unique = r.Unique };
        return rule._countMessage is null && !rule.Unique ? null : rule;
    }

    public static CollectionRule? ForMap(MapRules r)
    {
        var rule = new CollectionRule(r.HasMinPairs && r.MinPairs > 0 ? r.MinPairs : null, r.HasMaxPairs ? r.MaxPairs : null, "pair(s)", r.IgnoreEmpty) { NoSparse = r.NoSparse };
        return rule._countMessage is null && !rule.NoSparse ? null : rule;
    }

    /// <summary>False when the collection is empty and <c>ignore_empty</c> turns every rule off.</summary>
    public bool Applies(ICollection values) => !(_ignoreEmpty && values.Count == 0);

    public void CheckCount(ICollection values, string path, ConfigErrors errors)
    {
        var count = (ulong)values.Count;
        if (_countMessage is not null && ((_min is { } lo && count < lo) || (_max is { } hi && count > hi)))
        {
            errors.Add(path, _countMessage);
        }
    }

    public void CheckUnique(IList values, string path, ConfigErrors errors)
    {
        if (!Unique || values.Count < 2)
        {
            return;
        }

        // Generated scalars, strings and ByteStrings all have value equality.
        var seen = new HashSet<object>();
        for (var i = 0; i < values.Count; i++)
        {
            if (values[i] is { } v && !seen.Add(v))
            {
                errors.Add(FieldPath.Index(path, i), "repeated value must contain unique items");
            }
        }
    }
}
