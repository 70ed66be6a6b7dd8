using System.Collections;
using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Legate.Config.Validation;

/// <summary>
/// Enforces the protoc-gen-validate rules annotated in the Envoy protos, read from the
/// descriptors at run time (as Envoy's generated validators would, without generating code):
/// the first of the two validation layers, before the semantic checks.
/// </summary>
internal static class PgvValidator
{
    /// <summary>
    /// Deeper than any real config; stops a chain of Any-in-Any (each parsed with a fresh
    /// recursion budget) from exhausting the stack.
    /// </summary>
    internal const int MaxDepth = 200;

    /// <summary>
    /// Walks <paramref name="message"/> recursively (sub-messages, list items, map values, and
    /// the contents of each google.protobuf.Any whose type is known to <see cref="ApiTypes"/>,
    /// continuing the path inside it) and adds one error per violated rule, at the full path of
    /// the offending field. Never throws for bad data. A message for which <paramref name="skip"/>
    /// answers true is neither checked nor descended into (xDS: an endpoint already validated
    /// in the assignment in force).
    /// </summary>
    public static void Validate(IMessage message, string path, ConfigErrors errors, Func<IMessage, bool>? skip = null)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(errors);
        new Walk(errors, skip).Message(message, MessagePlan.For(message.Descriptor), path, 0);
    }

    private sealed class Walk
    {
        private readonly ConfigErrors _errors;
        private readonly Func<IMessage, bool>? _skip;

        public Walk(ConfigErrors errors, Func<IMessage, bool>? skip)
        {
            _errors = errors;
            _skip = skip;
        }

        public void Message(IMessage message, MessagePlan plan, string path, int depth)
        {
            if (!plan.NeedsVisit || (_skip is not null && _skip(message)))
            {
                return;
            }

            if (depth > MaxDepth)
            {
                _errors.Add(path, $"message is nested more than {MaxDepth} levels deep; not validated further");
                return;
            }

            if (plan.IsAny)
            {
                AnyContents((Any)message, path, depth);
                return;
            }

            foreach (var oneof in plan.RequiredOneofs)
            {
                if (oneof.Accessor.GetCaseFieldDescriptor(message) is null)
                {
                    _errors.Add(FieldPath.Field(path, oneof.Name), oneof.Message);
                }
            }

            foreach (var field in plan.Fields)
            {
                if (field.NeedsVisit)
                {
                    Field(message, field, path, depth);
                }
            }
        }

        private void Field(IMessage message, FieldRuleSet field, string parent, int depth)
        {
            switch (field.Shape)
            {
                case FieldShape.Singular:
                    if (field.HasPresence && !field.Accessor.HasValue(message))
                    {
                        // Another member of the oneof may be the one chosen; `required` on a
                        // oneof member is about that member once chosen.
                        if (field.Value.Required && !field.InOneof)
                        {
                            _errors.Add(FieldPath.Field(parent, field.Name), "value is required");
                        }

                        return;
                    }

                    Value(field.Value, field.Accessor.GetValue(message), FieldPath.Field(parent, field.Name), depth);
                    return;

                case FieldShape.Repeated:
                {
                    var list = (IList)field.Accessor.GetValue(message);
                    if (list.Count == 0 && field.Collection is null)
                    {
                        return;
                    }

                    var path = FieldPath.Field(parent, field.Name);
                    if (field.Collection is { } rule)
                    {
                        if (!rule.Applies(list))
                        {
                            return;
                        }

                        rule.CheckCount(list, path, _errors);
                        rule.CheckUnique(list, path, _errors);
                    }

                    if (field.Value.NeedsVisit)
                    {
                        for (var i = 0; i < list.Count; i++)
                        {
                            if (_skip is not null && list[i] is IMessage item && _skip(item))
                            {
                                // Before its path is built: most of a 10,000-endpoint list is skipped.
                                continue;
                            }

                            Value(field.Value, list[i], FieldPath.Index(path, i), depth);
                        }
                    }

                    return;
                }

                case FieldShape.Map:
                {
                    var map = (IDictionary)field.Accessor.GetValue(message);
                    if (map.Count == 0 && field.Collection is null)
                    {
                        return;
                    }

                    var path = FieldPath.Field(parent, field.Name);
                    var rule = field.Collection;
                    if (rule is not null)
                    {
                        if (!rule.Applies(map))
                        {
                            return;
                        }

                        rule.CheckCount(map, path, _errors);
                    }

                    var key = field.Key!;
                    var checkKeys = key.NeedsVisit;
                    var checkValues = field.Value.NeedsVisit || rule?.NoSparse == true;
                    if (!checkKeys && !checkValues)
                    {
                        return;
                    }

                    foreach (DictionaryEntry entry in map)
                    {
                        var entryPath = FieldPath.Key(path, KeyText(entry.Key));
                        if (checkKeys)
                        {
                            Value(key, entry.Key, entryPath, depth);
                        }

                        if (entry.Value is null && rule?.NoSparse == true)
                        {
                            _errors.Add(entryPath, "value cannot be sparse, all pairs must be non-nil");
                        }
                        else if (checkValues)
                        {
                            Value(field.Value, entry.Value, entryPath, depth);
                        }
                    }

                    return;
                }
            }
        }

        private void Value(ValueSlot slot, object? value, string path, int depth)
        {
            if (value is null)
            {
                return;
            }

            slot.Rule?.Check(value, path, _errors);
            if (slot.Plan is { } plan && value is IMessage child)
            {
                Message(child, plan, path, depth + 1);
            }
        }

        /// <summary>
        /// Validates what an Any holds, at the Any's own path (<c>typed_config.stat_prefix</c>).
        /// Types outside the catalog are left to the extension checks, which report them.
        /// </summary>
        private void AnyContents(Any any, string path, int depth)
        {
            var descriptor = ApiTypes.FindByTypeUrl(any.TypeUrl);
            if (descriptor?.Parser is null)
            {
                return;
            }

            var plan = MessagePlan.For(descriptor);
            if (!plan.NeedsVisit)
            {
                return;
            }

            IMessage inner;
            try
            {
                inner = descriptor.Parser.ParseFrom(any.Value);
            }
            catch (InvalidProtocolBufferException e)
            {
                _errors.Add(path, $"value of type {RuleText.Quote(descriptor.FullName)} cannot be decoded: {e.Message}");
                return;
            }

            Message(inner, plan, path, depth + 1);
        }

        private static string KeyText(object key) => key switch
        {
            string s => s,
            bool b => b ? "true" : "false",
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => key.ToString() ?? string.Empty,
        };
    }
}
