using System.Collections.Concurrent;
using Google.Protobuf.Reflection;

namespace Legate.Config;

/// <summary>
/// Whether a message type can hold, at any depth, what a config walker acts on (a target type, or
/// a target field), from the schema alone; answered once per type. A walker descends only into
/// fields whose type can: the checks that look for <c>DataSource</c> files or extension configs
/// then skip an EDS endpoint's address subtree instead of visiting four messages per endpoint with
/// a path string each (most of what validating 10,000 endpoints allocated).
/// </summary>
internal sealed class TypeReach
{
    private readonly Func<MessageDescriptor, bool> _targetType;
    private readonly Func<FieldDescriptor, bool>? _targetField;
    private readonly ConcurrentDictionary<MessageDescriptor, bool> _reaches = new();
    private readonly ConcurrentDictionary<FieldDescriptor, bool> _follows = new();

    /// <param name="targetType">Types the walker acts on (<c>google.protobuf.Any</c> when it unpacks them: anything may be inside).</param>
    /// <param name="targetField">Fields the walker acts on, whatever their type.</param>
    public TypeReach(Func<MessageDescriptor, bool> targetType, Func<FieldDescriptor, bool>? targetField = null)
    {
        _targetType = targetType;
        _targetField = targetField;
        Follows = Follow;
    }

    /// <summary><see cref="Follow"/> as one delegate, for <see cref="MessageWalker"/>'s <c>include</c>.</summary>
    public Func<FieldDescriptor, bool> Follows { get; }

    /// <summary>Whether a message-typed <paramref name="field"/> is worth descending into (answered once per field).</summary>
    public bool Follow(FieldDescriptor field) => _follows.TryGetValue(field, out var known) ? known : _follows.GetOrAdd(field,
        (_targetField is not null && _targetField(field)) || (field.FieldType == FieldType.Message && Reaches(field.MessageType)));

    /// <summary>Whether <paramref name="type"/> is a target or holds one at some depth.</summary>
    public bool Reaches(MessageDescriptor type) => _reaches.TryGetValue(type, out var known) ? known : _reaches.GetOrAdd(type, Compute(type));

    private bool Compute(MessageDescriptor root)
    {
        // Breadth-first over the types reachable through message fields (map entries included);
        // recursive types end at the visited set.
        var seen = new HashSet<MessageDescriptor> { root };
        var queue = new Queue<MessageDescriptor>();
        queue.Enqueue(root);
        while (queue.TryDequeue(out var type))
        {
            if (_targetType(type))
            {
                return true;
            }

            foreach (var field in type.Fields.InDeclarationOrder())
            {
                if (_targetField is not null && _targetField(field))
                {
                    return true;
                }

                if (field.FieldType == FieldType.Message && seen.Add(field.MessageType))
                {
                    queue.Enqueue(field.MessageType);
                }
            }
        }

        return false;
    }
}
