using Google.Protobuf;
using Google.Protobuf.Reflection;
using Validate;

namespace Legate.Config.Validation;

/// <summary>
/// Reads the protoc-gen-validate annotations from the descriptors.
/// <para>
/// Checked with Google.Protobuf 3.25.1 and the protoc 3.21 output: <c>GetOptions()</c> returns
/// the options parsed with the extensions of the file's dependencies registered, so
/// <c>GetExtension(ValidateExtensions.Rules)</c> yields a populated <see cref="FieldRules"/>
/// (not unknown fields), and no re-parse of the serialized options is needed. The tests pin
/// this down. <c>GetOptions()</c> clones the options on every call, so callers read them once
/// per descriptor and cache what they digest.
/// </para>
/// </summary>
internal static class RuleOptions
{
    /// <summary>Field number of <c>(validate.ignored)</c>, newer than the snapshot's validate.proto.</summary>
    internal const int IgnoredFieldNumber = 1072;

    public static FieldRules? ForField(FieldDescriptor field) => field.GetOptions()?.GetExtension(ValidateExtensions.Rules);

    public static bool IsRequired(OneofDescriptor oneof) => oneof.GetOptions()?.GetExtension(ValidateExtensions.Required) == true;

    /// <summary><c>(validate.disabled)</c> or <c>(validate.ignored)</c>: the message is never validated.</summary>
    public static bool IsSkipped(MessageDescriptor message) => message.GetOptions() is { } options && IsSkipped(options);

    internal static bool IsSkipped(MessageOptions options)
    {
        if (options.GetExtension(ValidateExtensions.Disabled))
        {
            return true;
        }

        // The snapshot's validate.proto has no `ignored` extension, so protoc emitted none; if a
        // newer proto sets it, it survives as an unknown field, which serialization keeps.
        return ReadBool(options.ToByteString(), IgnoredFieldNumber);
    }

    private static bool ReadBool(ByteString bytes, int fieldNumber)
    {
        var wanted = WireFormat.MakeTag(fieldNumber, WireFormat.WireType.Varint);
        var value = false;
        try
        {
            var input = new CodedInputStream(bytes.ToByteArray());
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                if (tag == wanted)
                {
                    value = input.ReadBool();
                }
                else
                {
                    input.SkipLastField();
                }
            }
        }
        catch (InvalidProtocolBufferException)
        {
            // Options produced by protoc are well formed; treat anything else as "not set".
        }

        return value;
    }
}
