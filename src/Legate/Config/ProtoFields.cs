using System.Collections;
using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Legate.Config;

/// <summary>Reflection helpers over generated messages.</summary>
internal static class ProtoFields
{
    /// <summary>
    /// Whether a field was given a value: a non-empty list or map, a present field with explicit
    /// presence (messages, wrappers, proto3 <c>optional</c>, oneof members), or a scalar other
    /// than its default (proto3 cannot tell "set to the default" from "not set").
    /// </summary>
    public static bool IsSet(IMessage message, FieldDescriptor field)
    {
        if (field.IsMap || field.IsRepeated)
        {
            return ((ICollection)field.Accessor.GetValue(message)).Count > 0;
        }

        if (field.HasPresence)
        {
            return field.Accessor.HasValue(message);
        }

        return field.Accessor.GetValue(message) switch
        {
            null => false,
            string s => s.Length > 0,
            ByteString b => !b.IsEmpty,
            bool b => b,
            Enum e => Convert.ToInt64(e, CultureInfo.InvariantCulture) != 0,
            IConvertible c => c.ToDouble(CultureInfo.InvariantCulture) != 0,
            _ => true,
        };
    }
}
