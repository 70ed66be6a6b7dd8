using System.Collections;
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;

namespace Legate.Config;

/// <summary>
/// Converts a <see cref="ConfigNode"/> tree into a protobuf message, guided by the message
/// descriptors, with the input rules an Envoy user expects from YAML: field names in snake_case
/// or lowerCamel, enums in any case, "5s" durations, a single value where a list is expected.
/// Unlike Google.Protobuf's JsonParser it never stops at the first problem: every error goes into
/// <see cref="ConfigErrors"/> with its field path and position, the bad field is skipped and
/// conversion continues, so one run reports everything wrong in a file.
/// </summary>
/// <remarks>
/// Positions: a field whose value is a scalar is located at the value (<c>connect_timeout: 5</c>
/// points at <c>5</c>); a field holding a mapping or sequence is located at its key, which is the
/// line a reader looks for. List items are located at the item. Every located path is recorded in
/// <see cref="ConfigErrors.SourceMap"/> for later validators.
/// </remarks>
internal sealed partial class ProtoConverter
{
    private const string TypeKey = "@type";
    private const string ValueKey = "value";

    // Largest |seconds| of a Duration accepted by the protobuf JSON mapping (10,000 years).
    private const long MaxDurationSeconds = 315_576_000_000;

    private static readonly ConcurrentDictionary<MessageDescriptor, Dictionary<string, FieldDescriptor>> s_fieldsByName = new();

    private static readonly HashSet<string> s_wrappers = new(StringComparer.Ordinal)
    {
        DoubleValue.Descriptor.FullName, FloatValue.Descriptor.FullName, Int64Value.Descriptor.FullName,
        UInt64Value.Descriptor.FullName, Int32Value.Descriptor.FullName, UInt32Value.Descriptor.FullName,
        BoolValue.Descriptor.FullName, StringValue.Descriptor.FullName, BytesValue.Descriptor.FullName,
    };

    private readonly ConfigErrors _errors;
    private readonly ConverterOptions _options;

    public ProtoConverter(ConfigErrors errors, ConverterOptions? options = null)
    {
        _errors = errors ?? throw new ArgumentNullException(nameof(errors));
        _options = options ?? new ConverterOptions();
    }

    public T Convert<T>(ConfigNode node, string path = "")
        where T : IMessage<T>, new() => (T)Convert(node, new T().Descriptor, path);

    /// <summary>
    /// Converts <paramref name="node"/> to a message of <paramref name="descriptor"/>'s type. Always
    /// returns a message (empty or partly filled when there were errors); check the errors.
    /// </summary>
    public IMessage Convert(ConfigNode node, MessageDescriptor descriptor, string path)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(descriptor);
        path ??= "";
        _errors.SourceMap.Record(path, node.Position);
        return ReadMessage(node, descriptor, path, node.Position) ?? NewMessage(descriptor);
    }

    // ---- messages ----

    /// <summary>A message from any node, honouring the JSON forms of well-known types. Null after an error.</summary>
    private IMessage? ReadMessage(ConfigNode node, MessageDescriptor descriptor, string path, SourcePosition at)
    {
        var name = descriptor.FullName;
        if (name == Value.Descriptor.FullName)
        {
            // Value is the one type where null means something (null_value) rather than "not set".
            return ReadStructValue(node, path, at);
        }

        if (IsNull(node))
        {
            return NewMessage(descriptor);
        }

        if (name == Any.Descriptor.FullName)
        {
            return ReadAny(node, path, at);
        }

        if (name == Struct.Descriptor.FullName)
        {
            return ReadStruct(node, path, at);
        }

        if (name == ListValue.Descriptor.FullName)
        {
            return ReadListValue(node, path, at);
        }

        if (node is ConfigScalar scalar)
        {
            if (name == Duration.Descriptor.FullName)
            {
                return ReadDuration(scalar, path, at);
            }

            if (name == Timestamp.Descriptor.FullName)
            {
                return ReadTimestamp(scalar, path, at);
            }

            if (name == FieldMask.Descriptor.FullName)
            {
                return ReadFieldMask(scalar);
            }

            if (s_wrappers.Contains(name))
            {
                var valueField = descriptor.FindFieldByNumber(1);
                if (!TryReadScalar(valueField.FieldType, scalar, path, at, out var primitive))
                {
                    return null;
                }

                var wrapper = NewMessage(descriptor);
                valueField.Accessor.SetValue(wrapper, primitive);
                return wrapper;
            }
        }

        if (node is not ConfigMapping mapping)
        {
            Error(path, $"expected a mapping for {name}, got {node.KindName}", at);
            return null;
        }

        // Everything else, including the object forms {seconds, nanos} and {value: x} of the
        // well-known types, is an ordinary message.
        var message = NewMessage(descriptor);
        ReadFields(message, descriptor, mapping, path, skipKey: null);
        if (message is Duration duration && !IsValidDuration(duration.Seconds, duration.Nanos))
        {
            Error(path, "invalid duration: seconds and nanos out of range or of different signs", at);
            return null;
        }

        return message;
    }

    private void ReadFields(IMessage message, MessageDescriptor descriptor, ConfigMapping mapping, string path, string? skipKey)
    {
        var fields = FieldsByName(descriptor);
        bool[]? seen = null;
        List<FieldDescriptor>? oneofMembersSet = null;
        foreach (var entry in mapping.Entries)
        {
            if (skipKey is not null && entry.Key == skipKey)
            {
                continue;
            }

            if (!fields.TryGetValue(entry.Key, out var field))
            {
                UnknownField(descriptor, entry, path);
                continue;
            }

            var fieldPath = FieldPath.Field(path, field.Name);
            var position = PositionOf(entry);
            _errors.SourceMap.Record(fieldPath, position);

            // The same field may be written twice only through its two names (proto and JSON).
            seen ??= new bool[descriptor.Fields.InDeclarationOrder().Count];
            if (seen[field.Index])
            {
                Error(fieldPath, $"field \"{field.Name}\" is set twice (as \"{field.Name}\" and \"{field.JsonName}\")", position);
                continue;
            }

            seen[field.Index] = true;
            if (IsNull(entry.Value) && !IsValueType(field))
            {
                continue;
            }

            var oneof = field.RealContainingOneof;
            if (oneof is not null)
            {
                oneofMembersSet ??= new List<FieldDescriptor>();
                var other = OneofMemberSet(oneofMembersSet, oneof);
                if (other is not null)
                {
                    Error(fieldPath, $"only one of \"{other.Name}\" and \"{field.Name}\" may be set (oneof {oneof.Name})", position);
                    continue;
                }

                oneofMembersSet.Add(field);
            }

            if (field.IsMap)
            {
                ReadMap(message, field, entry, fieldPath);
            }
            else if (field.IsRepeated)
            {
                ReadRepeated(message, field, entry.Value, fieldPath);
            }
            else if (TryReadValue(field, entry.Value, fieldPath, position, out var value))
            {
                field.Accessor.SetValue(message, value);
            }
        }
    }

    private static FieldDescriptor? OneofMemberSet(List<FieldDescriptor> set, OneofDescriptor oneof)
    {
        foreach (var field in set)
        {
            if (field.RealContainingOneof == oneof)
            {
                return field;
            }
        }

        return null;
    }

    /// <param name="packedWellKnown">True for a key beside "@type" when the Any holds a well-known type, whose content belongs under "value".</param>
    private void UnknownField(MessageDescriptor descriptor, ConfigEntry entry, string path, bool packedWellKnown = false)
    {
        var fieldPath = FieldPath.Field(path, entry.Key);
        if (_options.IgnoreUnknownFields)
        {
            _options.OnUnknownField?.Invoke(fieldPath);
            return;
        }

        string message;
        if (packedWellKnown)
        {
            message = $"unknown field \"{entry.Key}\" in {Any.Descriptor.FullName} holding {descriptor.FullName} (its content goes under \"{ValueKey}\")";
        }
        else
        {
            message = $"unknown field \"{entry.Key}\" in {descriptor.FullName}";
            if (Suggest(descriptor, entry.Key) is { } suggestion)
            {
                message += $" (did you mean \"{suggestion}\"?)";
            }
        }

        Error(fieldPath, message, entry.KeyPosition);
    }

    private void ReadRepeated(IMessage message, FieldDescriptor field, ConfigNode node, string path)
    {
        var list = (IList)field.Accessor.GetValue(message);
        if (node is not ConfigSequence sequence)
        {
            // Envoy accepts a single value where a list is expected; it becomes item 0.
            var itemPath = FieldPath.Index(path, 0);
            _errors.SourceMap.Record(itemPath, node.Position);
            if (TryReadValue(field, node, itemPath, node.Position, out var single))
            {
                list.Add(single);
            }

            return;
        }

        for (var i = 0; i < sequence.Items.Count; i++)
        {
            var item = sequence.Items[i];
            var itemPath = FieldPath.Index(path, i);
            _errors.SourceMap.Record(itemPath, item.Position);
            if (IsNull(item) && !IsValueType(field))
            {
                Error(itemPath, "a list item may not be null", item.Position);
            }
            else if (TryReadValue(field, item, itemPath, item.Position, out var value))
            {
                list.Add(value);
            }
        }
    }

    private void ReadMap(IMessage message, FieldDescriptor field, ConfigEntry fieldEntry, string path)
    {
        var keyField = field.MessageType.FindFieldByNumber(1);
        var valueField = field.MessageType.FindFieldByNumber(2);
        if (fieldEntry.Value is not ConfigMapping mapping)
        {
            Error(path, $"expected a mapping for map<{TypeName(keyField)}, {TypeName(valueField)}>, got {fieldEntry.Value.KindName}", PositionOf(fieldEntry));
            return;
        }

        var map = (IDictionary)field.Accessor.GetValue(message);
        foreach (var entry in mapping.Entries)
        {
            var entryPath = FieldPath.Key(path, entry.Key);
            var position = PositionOf(entry);
            _errors.SourceMap.Record(entryPath, position);
            var keyNode = new ConfigScalar(entry.KeyPosition, entry.Key, isQuoted: true);
            if (!TryReadScalar(keyField.FieldType, keyNode, entryPath, entry.KeyPosition, out var key))
            {
                continue;
            }

            if (IsNull(entry.Value) && !IsValueType(valueField))
            {
                Error(entryPath, "a map value may not be null", position);
            }
            else if (TryReadValue(valueField, entry.Value, entryPath, position, out var value))
            {
                map[key!] = value;
            }
        }
    }

    /// <summary>
    /// One value of <paramref name="field"/> (a single item if repeated) as the CLR object its
    /// accessor or collection takes. Wrapper fields take the bare primitive: the C# generator
    /// maps google.protobuf.UInt32Value to <c>uint?</c>, and reflection follows suit.
    /// </summary>
    private bool TryReadValue(FieldDescriptor field, ConfigNode node, string path, SourcePosition at, out object? value)
    {
        switch (field.FieldType)
        {
            case FieldType.Message or FieldType.Group:
                if (s_wrappers.Contains(field.MessageType.FullName))
                {
                    return TryReadWrapperPrimitive(field.MessageType, node, path, at, out value);
                }

                value = ReadMessage(node, field.MessageType, path, at);
                return value is not null;
            case FieldType.Enum:
                return TryReadEnum(field.EnumType, node, path, at, out value);
            default:
                return TryReadScalar(field.FieldType, node, path, at, out value);
        }
    }

    private bool TryReadWrapperPrimitive(MessageDescriptor wrapper, ConfigNode node, string path, SourcePosition at, out object? value)
    {
        var valueField = wrapper.FindFieldByNumber(1);
        if (node is ConfigMapping mapping)
        {
            // The object form {value: x}.
            var message = NewMessage(wrapper);
            ReadFields(message, wrapper, mapping, path, skipKey: null);
            value = valueField.Accessor.GetValue(message);
            return true;
        }

        return TryReadScalar(valueField.FieldType, node, path, at, out value);
    }

    // ---- scalars ----

    private bool TryReadScalar(FieldType type, ConfigNode node, string path, SourcePosition at, out object? value)
    {
        value = null;
        if (node is not ConfigScalar scalar)
        {
            Error(path, $"expected a scalar for {TypeName(type)}, got {node.KindName}", at);
            return false;
        }

        var text = scalar.Text;
        switch (type)
        {
            case FieldType.String:
                value = text;
                return true;
            case FieldType.Bool:
                if (text.Equals("true", StringComparison.OrdinalIgnoreCase) || text.Equals("false", StringComparison.OrdinalIgnoreCase))
                {
                    value = text.Length == 4;
                    return true;
                }

                break;
            case FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32:
                if (TryParseInteger(text, int.MinValue, int.MaxValue, out var i32))
                {
                    value = (int)i32;
                    return true;
                }

                break;
            case FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64:
                if (TryParseInteger(text, long.MinValue, long.MaxValue, out var i64))
                {
                    value = (long)i64;
                    return true;
                }

                break;
            case FieldType.UInt32 or FieldType.Fixed32:
                if (TryParseInteger(text, uint.MinValue, uint.MaxValue, out var u32))
                {
                    value = (uint)u32;
                    return true;
                }

                break;
            case FieldType.UInt64 or FieldType.Fixed64:
                if (TryParseInteger(text, ulong.MinValue, ulong.MaxValue, out var u64))
                {
                    value = (ulong)u64;
                    return true;
                }

                break;
            case FieldType.Double:
                if (TryParseDouble(text, out var d))
                {
                    value = d;
                    return true;
                }

                break;
            case FieldType.Float:
                if (TryParseDouble(text, out var f) && (!double.IsFinite(f) || Math.Abs(f) <= float.MaxValue))
                {
                    value = (float)f;
                    return true;
                }

                break;
            case FieldType.Bytes:
                if (TryParseBase64(text, out var bytes))
                {
                    value = bytes;
                    return true;
                }

                Error(path, $"invalid bytes \"{text}\" (expected base64)", at);
                return false;
        }

        Error(path, $"invalid {TypeName(type)} \"{text}\"", at);
        return false;
    }

    /// <summary>
    /// A decimal integer in range. 64-bit values usually arrive quoted (the JSON mapping writes them
    /// as strings); JSON writers may also emit integral values as "1e3" or "5.0", which protobuf accepts.
    /// </summary>
    private static bool TryParseInteger(string text, decimal min, decimal max, out decimal value)
    {
        const NumberStyles integer = NumberStyles.AllowLeadingSign;
        if (long.TryParse(text, integer, CultureInfo.InvariantCulture, out var l))
        {
            value = l;
        }
        else if (ulong.TryParse(text, integer, CultureInfo.InvariantCulture, out var ul))
        {
            value = ul;
        }
        else if (!decimal.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out value)
            || value != decimal.Truncate(value))
        {
            return false;
        }

        return value >= min && value <= max;
    }

    private static bool TryParseDouble(string text, out double value)
    {
        switch (text)
        {
            case "Infinity" or "inf" or ".inf" or ".Inf" or ".INF" or "+.inf" or "+.Inf" or "+.INF":
                value = double.PositiveInfinity;
                return true;
            case "-Infinity" or "-inf" or "-.inf" or "-.Inf" or "-.INF":
                value = double.NegativeInfinity;
                return true;
            case "NaN" or "nan" or ".nan" or ".NaN" or ".NAN":
                value = double.NaN;
                return true;
        }

        return double.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out value)
            && double.IsFinite(value);
    }

    private static bool TryParseBase64(string text, out ByteString bytes)
    {
        // Both the standard and the URL-safe alphabet, padded or not, as the protobuf JSON mapping allows.
        var normalized = text.Replace('-', '+').Replace('_', '/');
        if (normalized.Length % 4 != 0)
        {
            normalized = normalized.PadRight(normalized.Length + (4 - (normalized.Length % 4)), '=');
        }

        var buffer = new byte[normalized.Length / 4 * 3];
        if (System.Convert.TryFromBase64String(normalized, buffer, out var written))
        {
            bytes = ByteString.CopyFrom(buffer, 0, written);
            return true;
        }

        bytes = ByteString.Empty;
        return false;
    }

    private bool TryReadEnum(EnumDescriptor type, ConfigNode node, string path, SourcePosition at, out object? value)
    {
        value = null;
        if (node is not ConfigScalar scalar)
        {
            Error(path, $"expected a scalar for enum {type.FullName}, got {node.KindName}", at);
            return false;
        }

        // Names in any case (Envoy users write strict_dns and ROUND_ROBIN alike), or the number.
        int? number = null;
        foreach (var candidate in type.Values)
        {
            if (candidate.Name.Equals(scalar.Text, StringComparison.OrdinalIgnoreCase))
            {
                number = candidate.Number;
                break;
            }
        }

        if (number is null && int.TryParse(scalar.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
        {
            // Proto3 enums are open: unnamed numbers are kept, as protobuf's own parsers do.
            number = n;
        }

        if (number is null)
        {
            var names = new StringBuilder();
            foreach (var candidate in type.Values)
            {
                names.Append(names.Length == 0 ? "" : ", ").Append(candidate.Name);
            }

            Error(path, $"invalid value \"{scalar.Text}\" for enum {type.FullName} (expected one of {names})", at);
            return false;
        }

        // Enum.ToObject: repeated enum fields are RepeatedField<TEnum> and reject a boxed int.
        value = System.Enum.ToObject(type.ClrType, number.Value);
        return true;
    }

    // ---- well-known types ----

    private Duration? ReadDuration(ConfigScalar scalar, string path, SourcePosition at)
    {
        if (TryParseDuration(scalar.Text, out var duration))
        {
            return duration;
        }

        Error(path, $"invalid duration \"{scalar.Text}\"", at);
        return null;
    }

    /// <summary>Seconds with an "s" suffix and up to nine fractional digits: "5s", "0.25s", "-1.5s".</summary>
    internal static bool TryParseDuration(string text, out Duration duration)
    {
        duration = new Duration();
        if (text.Length < 2 || text[^1] != 's')
        {
            return false;
        }

        var body = text.AsSpan(0, text.Length - 1);
        var negative = body[0] == '-';
        if (negative)
        {
            body = body[1..];
        }

        var dot = body.IndexOf('.');
        var whole = dot >= 0 ? body[..dot] : body;
        var fraction = dot >= 0 ? body[(dot + 1)..] : ReadOnlySpan<char>.Empty;
        if (whole.Length is 0 or > 12 || (dot >= 0 && fraction.Length is 0 or > 9) || !AllDigits(whole) || !AllDigits(fraction))
        {
            return false;
        }

        var seconds = long.Parse(whole, NumberStyles.None, CultureInfo.InvariantCulture);
        var nanos = 0;
        for (var i = 0; i < 9; i++)
        {
            nanos = (nanos * 10) + (i < fraction.Length ? fraction[i] - '0' : 0);
        }

        if (seconds > MaxDurationSeconds)
        {
            return false;
        }

        duration.Seconds = negative ? -seconds : seconds;
        duration.Nanos = negative ? -nanos : nanos;
        return true;
    }

    private static bool AllDigits(ReadOnlySpan<char> text)
    {
        foreach (var c in text)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsValidDuration(long seconds, int nanos) =>
        seconds >= -MaxDurationSeconds && seconds <= MaxDurationSeconds
        && nanos > -1_000_000_000 && nanos < 1_000_000_000
        && !(seconds > 0 && nanos < 0) && !(seconds < 0 && nanos > 0);

    private Timestamp? ReadTimestamp(ConfigScalar scalar, string path, SourcePosition at)
    {
        var match = TimestampPattern().Match(scalar.Text);
        if (match.Success
            && DateTime.TryParseExact(match.Groups["base"].Value.ToUpperInvariant(), "yyyy'-'MM'-'dd'T'HH':'mm':'ss", CultureInfo.InvariantCulture, DateTimeStyles.None, out var local))
        {
            var offset = TimeSpan.Zero;
            var zone = match.Groups["zone"].Value;
            if (zone is not ("Z" or "z"))
            {
                offset = new TimeSpan(int.Parse(zone.AsSpan(1, 2), CultureInfo.InvariantCulture), int.Parse(zone.AsSpan(4, 2), CultureInfo.InvariantCulture), 0);
                offset = zone[0] == '-' ? -offset : offset;
            }

            var fraction = match.Groups["fraction"].Value;
            var nanos = fraction.Length == 0 ? 0 : int.Parse(fraction.PadRight(9, '0'), CultureInfo.InvariantCulture);
            var seconds = (local - offset - DateTime.UnixEpoch).Ticks / TimeSpan.TicksPerSecond;
            return new Timestamp { Seconds = seconds, Nanos = nanos };
        }

        Error(path, $"invalid timestamp \"{scalar.Text}\" (expected RFC 3339, e.g. \"2024-01-31T12:00:00Z\")", at);
        return null;
    }

    [GeneratedRegex(@"^(?<base>\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(?:\.(?<fraction>\d{1,9}))?(?<zone>[Zz]|[+-]\d{2}:\d{2})$", RegexOptions.CultureInvariant)]
    private static partial Regex TimestampPattern();

    /// <summary>The JSON form: comma-separated paths in lowerCamel, which name proto (snake_case) fields.</summary>
    private static FieldMask ReadFieldMask(ConfigScalar scalar)
    {
        var mask = new FieldMask();
        foreach (var part in scalar.Text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var snake = new StringBuilder(part.Length + 4);
            foreach (var c in part)
            {
                if (char.IsAsciiLetterUpper(c))
                {
                    snake.Append('_').Append(char.ToLowerInvariant(c));
                }
                else
                {
                    snake.Append(c);
                }
            }

            mask.Paths.Add(snake.ToString());
        }

        return mask;
    }

    private Struct? ReadStruct(ConfigNode node, string path, SourcePosition at)
    {
        if (node is not ConfigMapping mapping)
        {
            Error(path, $"expected a mapping for {Struct.Descriptor.FullName}, got {node.KindName}", at);
            return null;
        }

        var result = new Struct();
        foreach (var entry in mapping.Entries)
        {
            var entryPath = StructPath(path, entry.Key);
            var entryPosition = PositionOf(entry);
            _errors.SourceMap.Record(entryPath, entryPosition);
            result.Fields[entry.Key] = ReadStructValue(entry.Value, entryPath, entryPosition);
        }

        return result;
    }

    private ListValue? ReadListValue(ConfigNode node, string path, SourcePosition at)
    {
        if (node is not ConfigSequence sequence)
        {
            Error(path, $"expected a sequence for {ListValue.Descriptor.FullName}, got {node.KindName}", at);
            return null;
        }

        var list = new ListValue();
        for (var i = 0; i < sequence.Items.Count; i++)
        {
            var itemPath = FieldPath.Index(path, i);
            _errors.SourceMap.Record(itemPath, sequence.Items[i].Position);
            list.Values.Add(ReadStructValue(sequence.Items[i], itemPath, sequence.Items[i].Position));
        }

        return list;
    }

    /// <summary>Arbitrary YAML as a Value: plain scalars typed as YAML 1.2 types them, quoted ones strings.</summary>
    private Value ReadStructValue(ConfigNode node, string path, SourcePosition at)
    {
        switch (node)
        {
            case ConfigMapping:
                return new Value { StructValue = ReadStruct(node, path, at) };
            case ConfigSequence:
                return new Value { ListValue = ReadListValue(node, path, at) };
        }

        var scalar = (ConfigScalar)node;
        if (scalar.IsQuoted)
        {
            return Value.ForString(scalar.Text);
        }

        if (scalar.IsNull)
        {
            return Value.ForNull();
        }

        if (scalar.TryGetPlainBool(out var b))
        {
            return Value.ForBool(b);
        }

        if (YamlNumberPattern().IsMatch(scalar.Text))
        {
            return Value.ForNumber(ParseYamlNumber(scalar.Text));
        }

        return Value.ForString(scalar.Text);
    }

    // YAML 1.2 core schema numbers: decimal ints and floats, 0x / 0o ints, .inf and .nan.
    [GeneratedRegex(@"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+|0o[0-7]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", RegexOptions.CultureInvariant)]
    private static partial Regex YamlNumberPattern();

    private static double ParseYamlNumber(string text)
    {
        if (text.StartsWith("0x", StringComparison.Ordinal))
        {
            return ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hex) ? hex : double.NaN;
        }

        if (text.StartsWith("0o", StringComparison.Ordinal))
        {
            double octal = 0;
            foreach (var c in text.AsSpan(2))
            {
                octal = (octal * 8) + (c - '0');
            }

            return octal;
        }

        return TryParseDouble(text, out var value) ? value : double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    private static string StructPath(string parent, string key)
    {
        // Plain identifiers read best as fields; anything else is quoted so the path stays parseable.
        foreach (var c in key)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not '_' and not '-')
            {
                return FieldPath.Key(parent, key);
            }
        }

        return key.Length == 0 ? FieldPath.Key(parent, key) : FieldPath.Field(parent, key);
    }

    // ---- Any and TypedStruct ----

    private Any? ReadAny(ConfigNode node, string path, SourcePosition at)
    {
        if (node is not ConfigMapping mapping)
        {
            Error(path, $"expected a mapping for {Any.Descriptor.FullName}, got {node.KindName}", at);
            return null;
        }

        var typeEntry = mapping.Find(TypeKey);
        if (typeEntry is null)
        {
            Error(path, $"missing \"{TypeKey}\" in {Any.Descriptor.FullName}", at);
            return null;
        }

        if (typeEntry.Value is not ConfigScalar { IsNull: false } typeScalar)
        {
            Error(path, $"\"{TypeKey}\" must be a type URL, got {typeEntry.Value.KindName}", typeEntry.Value.Position);
            return null;
        }

        var typeUrl = typeScalar.Text;
        var descriptor = ApiTypes.FindByTypeUrl(typeUrl);
        if (descriptor is null)
        {
            Error(path, $"unknown type URL \"{typeUrl}\" in {TypeKey}", typeScalar.Position);
            return null;
        }

        if (descriptor.FullName is "udpa.type.v1.TypedStruct" or "xds.type.v3.TypedStruct")
        {
            return ReadTypedStruct(mapping, descriptor, path, at);
        }

        IMessage? message;
        if (HasSpecialJsonForm(descriptor) || (descriptor.FullName == Empty.Descriptor.FullName && mapping.Find(ValueKey) is not null))
        {
            // Well-known types with their own JSON form carry it under "value". Empty has no special
            // form, but Google.Protobuf's formatter writes it that way too, so both spellings are read.
            message = null;
            foreach (var entry in mapping.Entries)
            {
                if (entry.Key == ValueKey)
                {
                    var valuePath = FieldPath.Field(path, ValueKey);
                    var valuePosition = PositionOf(entry);
                    _errors.SourceMap.Record(valuePath, valuePosition);
                    message = ReadMessage(entry.Value, descriptor, valuePath, valuePosition);
                    if (message is null)
                    {
                        return null;
                    }
                }
                else if (entry.Key != TypeKey)
                {
                    UnknownField(descriptor, entry, path, packedWellKnown: true);
                }
            }

            if (message is null)
            {
                Error(path, $"missing \"{ValueKey}\" for {descriptor.FullName} in {Any.Descriptor.FullName}", at);
                return null;
            }
        }
        else
        {
            // The usual case: the packed message's fields sit next to "@type", and its paths continue ours.
            message = NewMessage(descriptor);
            ReadFields(message, descriptor, mapping, path, TypeKey);
        }

        return Pack(message, typeUrl);
    }

    /// <summary>
    /// A TypedStruct names a type by URL and gives its fields as a Struct. It is converted to that
    /// type here, so the rest of the proxy only ever sees the real message packed in the Any.
    /// </summary>
    private Any? ReadTypedStruct(ConfigMapping mapping, MessageDescriptor typedStruct, string path, SourcePosition at)
    {
        ConfigScalar? typeUrl = null;
        ConfigEntry? value = null;
        foreach (var entry in mapping.Entries)
        {
            switch (entry.Key)
            {
                case TypeKey:
                    break;
                case "type_url" or "typeUrl":
                    var typeUrlPath = FieldPath.Field(path, "type_url");
                    _errors.SourceMap.Record(typeUrlPath, PositionOf(entry));
                    if (entry.Value is ConfigScalar { IsNull: false } scalar)
                    {
                        typeUrl = scalar;
                    }
                    else
                    {
                        Error(typeUrlPath, $"expected a type URL, got {entry.Value.KindName}", entry.Value.Position);
                        return null;
                    }

                    break;
                case ValueKey:
                    value = entry;
                    break;
                default:
                    UnknownField(typedStruct, entry, path);
                    break;
            }
        }

        if (typeUrl is null)
        {
            Error(path, $"missing \"type_url\" in {typedStruct.FullName}", at);
            return null;
        }

        var descriptor = ApiTypes.FindByTypeUrl(typeUrl.Text);
        if (descriptor is null)
        {
            Error(FieldPath.Field(path, "type_url"), $"unknown type URL \"{typeUrl.Text}\" in type_url", typeUrl.Position);
            return null;
        }

        IMessage? message;
        if (value is null)
        {
            message = NewMessage(descriptor);
        }
        else
        {
            var valuePath = FieldPath.Field(path, ValueKey);
            var valuePosition = PositionOf(value);
            _errors.SourceMap.Record(valuePath, valuePosition);
            message = ReadMessage(value.Value, descriptor, valuePath, valuePosition);
        }

        return message is null ? null : Pack(message, typeUrl.Text);
    }

    private static Any Pack(IMessage message, string typeUrl) => new()
    {
        // Keep the URL as written (some control planes use their own prefix); a bare name gets the usual one.
        TypeUrl = typeUrl.Contains('/', StringComparison.Ordinal) ? typeUrl : ApiTypes.TypeUrlOf(message.Descriptor),
        Value = message.ToByteString(),
    };

    private static bool HasSpecialJsonForm(MessageDescriptor descriptor)
    {
        var name = descriptor.FullName;
        return s_wrappers.Contains(name)
            || name == Any.Descriptor.FullName || name == Duration.Descriptor.FullName || name == Timestamp.Descriptor.FullName
            || name == FieldMask.Descriptor.FullName || name == Struct.Descriptor.FullName || name == Value.Descriptor.FullName
            || name == ListValue.Descriptor.FullName;
    }

    // ---- helpers ----

    private void Error(string path, string message, SourcePosition position) => _errors.Add(path, message, position);

    private static bool IsNull(ConfigNode node) => node is ConfigScalar { IsNull: true };

    private static bool IsValueType(FieldDescriptor field) =>
        field.FieldType == FieldType.Message && field.MessageType.FullName == Value.Descriptor.FullName;

    private static SourcePosition PositionOf(ConfigEntry entry) => entry.Value is ConfigScalar ? entry.Value.Position : entry.KeyPosition;

    private static IMessage NewMessage(MessageDescriptor descriptor) => (IMessage)Activator.CreateInstance(descriptor.ClrType)!;

    private static string TypeName(FieldType type) => type.ToString().ToLowerInvariant();

    private static string TypeName(FieldDescriptor field) => field.FieldType switch
    {
        FieldType.Message or FieldType.Group => field.MessageType.FullName,
        FieldType.Enum => field.EnumType.FullName,
        _ => TypeName(field.FieldType),
    };

    /// <summary>Fields by proto name and by JSON (lowerCamel) name, built once per message type.</summary>
    private static Dictionary<string, FieldDescriptor> FieldsByName(MessageDescriptor descriptor) =>
        s_fieldsByName.GetOrAdd(descriptor, static d =>
        {
            var fields = d.Fields.InDeclarationOrder();
            var byName = new Dictionary<string, FieldDescriptor>(fields.Count * 2, StringComparer.Ordinal);
            foreach (var field in fields)
            {
                byName[field.Name] = field;
                byName.TryAdd(field.JsonName, field);
            }

            return byName;
        });

    /// <summary>The field name closest to a misspelt key, if it is close enough to be a likely typo.</summary>
    private static string? Suggest(MessageDescriptor descriptor, string key)
    {
        var normalizedKey = Normalize(key);
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var field in descriptor.Fields.InDeclarationOrder())
        {
            var distance = EditDistance(normalizedKey, Normalize(field.Name));
            if (distance < bestDistance)
            {
                best = field.Name;
                bestDistance = distance;
            }
        }

        return bestDistance <= Math.Max(1, Math.Min(3, normalizedKey.Length / 3)) ? best : null;

        // Case and underscores are ignored, so "connectTimeOut" still finds connect_timeout.
        static string Normalize(string s) => s.Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();
    }

    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
