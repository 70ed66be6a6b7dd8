using System.Collections.Concurrent;
using Google.Protobuf.Reflection;

namespace Legate.Config.Validation;

/// <summary>
/// What to check in messages of one type, built once per <see cref="MessageDescriptor"/> and
/// shared by every validation: the required oneofs, and the fields that have rules or may lead
/// to rules (message, list and map fields). Also knows whether anything at all can fail below
/// this type, so that the walk skips subtrees without rules.
/// </summary>
internal sealed class MessagePlan
{
    private static readonly ConcurrentDictionary<MessageDescriptor, MessagePlan> s_plans = new();

    // 0 = not computed yet, 1 = yes, 2 = no. Racing threads compute the same answer.
    private int _needsVisit;

    private MessagePlan(MessageDescriptor descriptor)
    {
        Descriptor = descriptor;
        IsAny = descriptor.FullName == Google.Protobuf.WellKnownTypes.Any.Descriptor.FullName;
        Skipped = RuleOptions.IsSkipped(descriptor);
        if (Skipped)
        {
            RequiredOneofs = [];
            Fields = [];
            return;
        }

        RequiredOneofs = descriptor.Oneofs
            .Where(o => !o.IsSynthetic && RuleOptions.IsRequired(o))
            .Select(o => new RequiredOneof(o))
            .ToArray();
        Fields = descriptor.Fields.InDeclarationOrder()
            .Select(FieldRuleSet.Create)
            .OfType<FieldRuleSet>()
            .ToArray();
    }

    public MessageDescriptor Descriptor { get; }

    /// <summary>google.protobuf.Any: its contents are unpacked and validated in its place.</summary>
    public bool IsAny { get; }

    /// <summary><c>(validate.disabled)</c> or <c>(validate.ignored)</c>.</summary>
    public bool Skipped { get; }

    public RequiredOneof[] RequiredOneofs { get; }

    public FieldRuleSet[] Fields { get; }

    /// <summary>Whether a message of this type, or anything reachable from it, has a rule to check.</summary>
    public bool NeedsVisit
    {
        get
        {
            if (_needsVisit == 0)
            {
                _needsVisit = ComputeNeedsVisit() ? 1 : 2;
            }

            return _needsVisit == 1;
        }
    }

    private bool HasLocalRules => !Skipped && (IsAny || RequiredOneofs.Length > 0 || Fields.Any(f => f.HasOwnRules));

    public static MessagePlan For(MessageDescriptor descriptor) => s_plans.GetOrAdd(descriptor, static d => new MessagePlan(d));

    /// <summary>
    /// A breadth-first search over the message types reachable from this one. A search (not a
    /// recursive "any child needs a visit") because the type graph has cycles; types already
    /// answered cut it short. An Any counts as having rules since its contents are unknown.
    /// </summary>
    private bool ComputeNeedsVisit()
    {
        var seen = new HashSet<MessageDescriptor> { Descriptor };
        var queue = new Queue<MessagePlan>();
        queue.Enqueue(this);
        while (queue.Count > 0)
        {
            var plan = queue.Dequeue();
            if (plan.Skipped || plan._needsVisit == 2)
            {
                continue;
            }

            if (plan._needsVisit == 1 || plan.HasLocalRules)
            {
                return true;
            }

            foreach (var field in plan.Fields)
            {
                if (field.Value.MessageType is { } child && seen.Add(child))
                {
                    queue.Enqueue(For(child));
                }
            }
        }

        return false;
    }
}

/// <summary>A oneof annotated <c>(validate.required) = true</c>.</summary>
internal sealed class RequiredOneof
{
    public RequiredOneof(OneofDescriptor oneof)
    {
        Name = oneof.Name;
        Accessor = oneof.Accessor;
        var names = oneof.Fields.Select(f => RuleText.Quote(f.Name)).ToArray();
        Message = names.Length == 1 ? $"field {names[0]} must be set" : $"exactly one of {string.Join(", ", names)} must be set";
    }

    public string Name { get; }

    public OneofAccessor Accessor { get; }

    public string Message { get; }
}
