using System.Collections;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;

namespace Legate.Config;

/// <summary>
/// Visits every message in a configuration tree with its field path, including the messages packed
/// in <c>Any</c> fields (unpacked through <see cref="ApiTypes"/>; the path goes on through them).
/// </summary>
internal static class MessageWalker
{
    /// <summary>
    /// Visits <paramref name="root"/> and everything in it, except the messages <paramref name="skip"/>
    /// answers true for (and what they hold), and the fields <paramref name="include"/> answers false for.
    /// </summary>
    public static void ForEach(IMessage root, string path, Action<IMessage, string> visit, Func<IMessage, bool>? skip = null, Func<FieldDescriptor, bool>? include = null)
    {
        if (skip is not null && skip(root))
        {
            return;
        }

        if (root is Any any)
        {
            var descriptor = ApiTypes.FindByTypeUrl(any.TypeUrl);
            if (descriptor is not null)
            {
                ForEach(descriptor.Parser.ParseFrom(any.Value), path, visit, skip, include);
            }

            return;
        }

        visit(root, path);
        ForEachChild(root, path, (_, child, childPath, _) => ForEach(child, childPath, visit, skip, include), include, skip);
    }

    /// <summary>
    /// Calls <paramref name="visit"/> for each message directly inside <paramref name="message"/>:
    /// singular message fields, list items (<c>field[i]</c>) and map values (<c>field["key"]</c>,
    /// with the key), for the fields <paramref name="include"/> accepts (all by default), except
    /// the list items <paramref name="skip"/> answers true for (tested before their path is built).
    /// </summary>
    public static void ForEachChild(
        IMessage message,
        string path,
        Action<FieldDescriptor, IMessage, string, string?> visit,
        Func<FieldDescriptor, bool>? include = null,
        Func<IMessage, bool>? skip = null)
    {
        // Indexed, and each path built only for a field that holds something: most message fields of
        // a resource are unset, and walking 1,000 CDS clusters built a path string for each of them.
        var fields = message.Descriptor.Fields.InDeclarationOrder();
        for (var f = 0; f < fields.Count; f++)
        {
            var field = fields[f];
            if (field.FieldType != FieldType.Message || (include is not null && !include(field)))
            {
                continue;
            }

            var value = field.Accessor.GetValue(message);
            if (field.IsMap)
            {
                var map = (IDictionary)value;
                if (map.Count == 0)
                {
                    continue;
                }

                var fieldPath = FieldPath.Field(path, field.Name);
                foreach (DictionaryEntry entry in map)
                {
                    if (entry.Value is IMessage child)
                    {
                        var key = entry.Key.ToString() ?? "";
                        visit(field, child, FieldPath.Key(fieldPath, key), key);
                    }
                }
            }
            else if (field.IsRepeated)
            {
                var list = (IList)value;
                if (list.Count == 0)
                {
                    continue;
                }

                var fieldPath = FieldPath.Field(path, field.Name);
                for (var i = 0; i < list.Count; i++)
                {
                    var item = (IMessage)list[i]!;
                    if (skip is null || !skip(item))
                    {
                        visit(field, item, FieldPath.Index(fieldPath, i), null);
                    }
                }
            }
            else if (value is IMessage child)
            {
                visit(field, child, FieldPath.Field(path, field.Name), null);
            }
        }
    }
}
