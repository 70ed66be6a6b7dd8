using System.Collections;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Legate.Config;
using Udpa.Annotations;
using Any = Google.Protobuf.WellKnownTypes.Any;

namespace Legate.Admin;

/// <summary>
/// Hides secrets before a config is shown, as Envoy's <c>MessageUtil::redact</c> does: every
/// field annotated <c>[(udpa.annotations.sensitive) = true]</c> (TLS private keys, passwords,
/// session ticket keys, HMAC secrets…) has each string and bytes value under it replaced by
/// <c>[redacted]</c> and other scalars cleared. <c>Any</c> values are unpacked, redacted and
/// repacked, so secrets inside typed_config are found too.
/// </summary>
internal static class SensitiveFieldRedactor
{
    public const string Redacted = "[redacted]";

    private static readonly ByteString s_redactedBytes = ByteString.CopyFromUtf8(Redacted);

    /// <summary>Redacts <paramref name="message"/> in place; pass a clone when the original is still in use.</summary>
    public static void Redact(IMessage message) => Redact(message, ancestorIsSensitive: false);

    private static void Redact(IMessage message, bool ancestorIsSensitive)
    {
        if (message is Any any)
        {
            RedactAny(any, ancestorIsSensitive);
            return;
        }

        foreach (var field in message.Descriptor.Fields.InFieldNumberOrder())
        {
            if (!ProtoFields.IsSet(message, field))
            {
                continue;
            }

            var sensitive = ancestorIsSensitive || IsSensitive(field);
            var value = field.Accessor.GetValue(message);
            if (field.IsMap)
            {
                // Map values that are messages may hold sensitive fields; keys are never redacted.
                var valueField = field.MessageType.FindFieldByNumber(2);
                if (valueField.FieldType == FieldType.Message)
                {
                    foreach (DictionaryEntry entry in (IDictionary)value)
                    {
                        Redact((IMessage)entry.Value!, sensitive);
                    }
                }
                else if (sensitive)
                {
                    field.Accessor.Clear(message);
                }
            }
            else if (field.FieldType is FieldType.Message or FieldType.Group)
            {
                if (field.IsRepeated)
                {
                    foreach (IMessage item in (IList)value)
                    {
                        Redact(item, sensitive);
                    }
                }
                else if (value is IMessage child)
                {
                    Redact(child, sensitive);
                }
                else if (sensitive)
                {
                    // A wrapper type (BoolValue, StringValue…) surfaces as its plain value in C#.
                    field.Accessor.Clear(message);
                }
            }
            else if (sensitive)
            {
                RedactScalar(message, field, value);
            }
        }
    }

    private static void RedactScalar(IMessage message, FieldDescriptor field, object value)
    {
        if (field.FieldType is FieldType.String or FieldType.Bytes)
        {
            object replacement = field.FieldType == FieldType.String ? Redacted : s_redactedBytes;
            if (field.IsRepeated)
            {
                var list = (IList)value;
                for (var i = 0; i < list.Count; i++)
                {
                    list[i] = replacement;
                }
            }
            else
            {
                field.Accessor.SetValue(message, replacement);
            }
        }
        else
        {
            field.Accessor.Clear(message);
        }
    }

    private static void RedactAny(Any any, bool ancestorIsSensitive)
    {
        // Every Any in a loaded config has a known type (the loader rejects unknown ones).
        if (ApiTypes.FindByTypeUrl(any.TypeUrl) is not { Parser: { } parser })
        {
            return;
        }

        IMessage inner;
        try
        {
            inner = parser.ParseFrom(any.Value);
        }
        catch (InvalidProtocolBufferException)
        {
            return;
        }

        Redact(inner, ancestorIsSensitive);
        any.Value = inner.ToByteString();
    }

    private static bool IsSensitive(FieldDescriptor field) =>
        field.GetOptions()?.GetExtension(SensitiveExtensions.Sensitive) == true;
}
