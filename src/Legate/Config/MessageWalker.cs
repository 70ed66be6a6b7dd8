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
    public static void ForEach(IMessage root, string path, Action<IMessage, string> visit)
    {
        if (root is Any any)
        {
            var descriptor = ApiTypes.FindByTypeUrl(any.TypeUrl);
            if (descriptor is not null)
            {
                ForEach(descriptor.Parser.ParseFrom(any.Value), path, visit);
            }

            return;
        }

        visit(root, path);
        foreach (var field in root.Descriptor.Fields.InDeclarationOrder())
        {
            if (field.FieldType != FieldType.Message)
            {
                continue;
            }

            var fieldPath = FieldPath.Field(path, field.Name);
            var value = field.Accessor.GetValue(root);
            if (field.IsMap)
            {
                foreach (DictionaryEntry entry in (IDictionary)value)
                {
                    if (entry.Value is IMessage child)
                    {
                        ForEach(child, FieldPath.Key(fieldPath, entry.Key.ToString() ?? ""), visit);
                    }
                }
            }
            else if (field.IsRepeated)
            {
                var list = (IList)value;
                for (var i = 0; i < list.Count; i++)
                {
                    ForEach((IMessage)list[i]!, FieldPath.Index(fieldPath, i), visit);
                }
            }
            else if (value is IMessage child)
            {
                ForEach(child, fieldPath, visit);
            }
        }
    }
}
