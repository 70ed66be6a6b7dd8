using System.Collections;
using System.Globalization;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Legate.Extensions.Filters.Http.Tap;

/// <summary>
/// Protobuf text format as Envoy's <c>MessageUtil::toTextProto</c> prints it (the tap sinks'
/// <c>PROTO_TEXT</c>): set fields in field-number order, <c>name: value</c> for scalars, nested
/// messages as <c>name {</c> … <c>}</c> indented by two spaces, enums by name, repeated fields one
/// line per element, strings and bytes C-escaped (octal for bytes outside printable ASCII, as the
/// printer does without UTF-8 escaping). Written for trace messages: no Any expansion, no groups.
/// </summary>
internal static class ProtoTextFormat
{
    public static string Format(IMessage message)
    {
        var sb = new StringBuilder();
        WriteMessage(sb, message, 0);
        return sb.ToString();
    }

    private static void WriteMessage(StringBuilder sb, IMessage message, int indent)
    {
        foreach (var field in message.Descriptor.Fields.InFieldNumberOrder())
        {
            var value = field.Accessor.GetValue(message);
            if (field.IsMap)
            {
                // The printer sorts map entries by key.
                var entries = ((IDictionary)value).Cast<DictionaryEntry>().OrderBy(e => e.Key, Comparer<object>.Create(CompareKeys)).ToList();
                foreach (var entry in entries)
                {
                    Indent(sb, indent).Append(field.Name).Append(" {\n");
                    WriteField(sb, field.MessageType.FindFieldByNumber(1), entry.Key, indent + 2);
                    WriteField(sb, field.MessageType.FindFieldByNumber(2), entry.Value!, indent + 2);
                    Indent(sb, indent).Append("}\n");
                }
            }
            else if (field.IsRepeated)
            {
                foreach (var element in (IList)value)
                {
                    WriteField(sb, field, element!, indent);
                }
            }
            else if (field.HasPresence ? field.Accessor.HasValue(message) : !IsDefault(field, value))
            {
                WriteField(sb, field, value, indent);
            }
        }
    }

    private static void WriteField(StringBuilder sb, FieldDescriptor field, object value, int indent)
    {
        Indent(sb, indent).Append(field.Name);
        if (field.FieldType == FieldType.Message)
        {
            sb.Append(" {\n");
            WriteMessage(sb, (IMessage)value, indent + 2);
            Indent(sb, indent).Append("}\n");
            return;
        }

        sb.Append(": ");
        switch (field.FieldType)
        {
            case FieldType.String:
                AppendEscaped(sb, Encoding.UTF8.GetBytes((string)value));
                break;
            case FieldType.Bytes:
                AppendEscaped(sb, ((ByteString)value).Span);
                break;
            case FieldType.Enum:
                var number = Convert.ToInt32(value, CultureInfo.InvariantCulture);
                sb.Append(field.EnumType.FindValueByNumber(number)?.Name ?? number.ToString(CultureInfo.InvariantCulture));
                break;
            case FieldType.Bool:
                sb.Append((bool)value ? "true" : "false");
                break;
            case FieldType.Double:
                sb.Append(((double)value).ToString("R", CultureInfo.InvariantCulture));
                break;
            case FieldType.Float:
                sb.Append(((float)value).ToString("R", CultureInfo.InvariantCulture));
                break;
            default:
                sb.Append(Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
        }

        sb.Append('\n');
    }

    private static bool IsDefault(FieldDescriptor field, object value) => field.FieldType switch
    {
        FieldType.String => ((string)value).Length == 0,
        FieldType.Bytes => ((ByteString)value).IsEmpty,
        FieldType.Bool => !(bool)value,
        FieldType.Enum => Convert.ToInt32(value, CultureInfo.InvariantCulture) == 0,
        FieldType.Double => (double)value == 0,
        FieldType.Float => (float)value == 0,
        FieldType.Message => false,
        _ => Convert.ToDecimal(value, CultureInfo.InvariantCulture) == 0,
    };

    /// <summary>C escaping as protobuf's CEscape: the usual backslash escapes, other non-printable bytes as three octal digits.</summary>
    private static void AppendEscaped(StringBuilder sb, ReadOnlySpan<byte> bytes)
    {
        sb.Append('"');
        foreach (var b in bytes)
        {
            switch (b)
            {
                case (byte)'\n': sb.Append("\\n"); break;
                case (byte)'\r': sb.Append("\\r"); break;
                case (byte)'\t': sb.Append("\\t"); break;
                case (byte)'"': sb.Append("\\\""); break;
                case (byte)'\'': sb.Append("\\'"); break;
                case (byte)'\\': sb.Append("\\\\"); break;
                default:
                    if (b < 0x20 || b >= 0x7f)
                    {
                        sb.Append('\\').Append((char)('0' + ((b >> 6) & 7))).Append((char)('0' + ((b >> 3) & 7))).Append((char)('0' + (b & 7)));
                    }
                    else
                    {
                        sb.Append((char)b);
                    }

                    break;
            }
        }

        sb.Append('"');
    }

    private static int CompareKeys(object? a, object? b) => a is string sa && b is string sb
        ? string.CompareOrdinal(sa, sb)
        : Comparer<object>.Default.Compare(a!, b!);

    private static StringBuilder Indent(StringBuilder sb, int indent) => sb.Append(' ', indent);
}
