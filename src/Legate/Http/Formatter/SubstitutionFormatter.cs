using System.Text;
using System.Text.Json;
using Envoy.Config.Core.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;

namespace Legate.Http.Formatter;

/// <summary>
/// Envoy's substitution format strings (<c>SubstitutionFormatString</c>: text_format,
/// text_format_source, json_format, omit_empty_values, content_type) with command operators such
/// as <c>%RESPONSE_CODE%</c> and <c>%REQ(x-request-id)%</c>, compiled once. Used by
/// local_reply_config and the access loggers. Operators Legate does not know are config errors
/// with the field path, never silently printed as text.
/// </summary>
internal sealed class SubstitutionFormatter
{
    /// <summary>Envoy's default access log format (used when a logger has no format).</summary>
    public const string DefaultFormat =
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% " +
        "%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" " +
        "\"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

    [ThreadStatic]
    private static StringBuilder? t_buffer;

    [ThreadStatic]
    private static StringBuilder? t_scratch;

    private readonly Segment[]? _text;
    private readonly JsonNode[]? _json;
    private readonly bool _omitEmpty;

    private SubstitutionFormatter(Segment[]? text, JsonNode[]? json, string contentType, bool omitEmpty)
    {
        _text = text;
        _json = json;
        _omitEmpty = omitEmpty;
        ContentType = contentType;
    }

    /// <summary>text/plain for text formats, application/json for JSON, or the configured content_type.</summary>
    public string ContentType { get; }

    /// <summary>Whether this formats JSON (one object per line).</summary>
    public bool IsJson => _json is not null;

    /// <summary>Envoy's default access log format, compiled.</summary>
    public static SubstitutionFormatter Default { get; } = CompileText(DefaultFormat, "(default format)", new ConfigErrors(null), omitEmpty: false)!;

    public static SubstitutionFormatter? Compile(SubstitutionFormatString config, string path, ConfigErrors errors)
    {
        var count = errors.Errors.Count;
        SubstitutionFormatter? formatter = null;
        var omitEmpty = config.OmitEmptyValues;
        switch (config.FormatCase)
        {
#pragma warning disable CS0612 // text_format is deprecated in favour of text_format_source, yet widely used.
            case SubstitutionFormatString.FormatOneofCase.TextFormat:
                formatter = new SubstitutionFormatter(ParseText(config.TextFormat, FieldPath.Field(path, "text_format"), errors), null, ContentTypeOr(config, "text/plain"), omitEmpty);
                break;
#pragma warning restore CS0612
            case SubstitutionFormatString.FormatOneofCase.TextFormatSource:
                var sourcePath = FieldPath.Field(path, "text_format_source");
                if (ReadSource(config.TextFormatSource, sourcePath, errors) is { } text)
                {
                    formatter = new SubstitutionFormatter(ParseText(text, sourcePath, errors), null, ContentTypeOr(config, "text/plain"), omitEmpty);
                }

                break;
            case SubstitutionFormatString.FormatOneofCase.JsonFormat:
                formatter = new SubstitutionFormatter(null, ParseJson(config.JsonFormat, FieldPath.Field(path, "json_format"), errors), ContentTypeOr(config, "application/json"), omitEmpty);
                break;
            default:
                errors.Add(path, "one of text_format, text_format_source or json_format is required");
                break;
        }

        if (config.Formatters.Count > 0)
        {
            errors.Add(FieldPath.Field(path, "formatters"), "formatter extensions are not supported yet");
        }

        return errors.Errors.Count > count ? null : formatter;
    }

    /// <summary>A plain text format (the access loggers' legacy <c>format</c> field, the default format).</summary>
    public static SubstitutionFormatter? CompileText(string format, string path, ConfigErrors errors, bool omitEmpty)
    {
        var count = errors.Errors.Count;
        var segments = ParseText(format, path, errors);
        return errors.Errors.Count > count ? null : new SubstitutionFormatter(segments, null, "text/plain", omitEmpty);
    }

    /// <summary>
    /// A header value of <c>request_headers_to_add</c> / <c>response_headers_to_add</c> (Envoy's
    /// header formatter): the same command operators, but one that has no value prints nothing
    /// instead of <c>-</c>, so an all-empty value can be left out.
    /// </summary>
    public static SubstitutionFormatter? CompileHeaderValue(string format, string path, ConfigErrors errors) =>
        CompileText(format, path, errors, omitEmpty: true);

    /// <summary>Formats a header value compiled by <see cref="CompileHeaderValue"/>.</summary>
    public string FormatHeaderValue(HttpStream stream) => Format(FormatterContext.For(stream, string.Empty));

    /// <summary>A JSON format from a struct (the access loggers' legacy <c>json_format</c> field).</summary>
    public static SubstitutionFormatter? CompileJson(Struct format, string path, ConfigErrors errors, bool omitEmpty)
    {
        var count = errors.Errors.Count;
        var nodes = ParseJson(format, path, errors);
        return errors.Errors.Count > count ? null : new SubstitutionFormatter(null, nodes, "application/json", omitEmpty);
    }

    /// <summary>Formats for <paramref name="stream"/>; <paramref name="localReplyBody"/> is what %LOCAL_REPLY_BODY% prints.</summary>
    public string Format(HttpStream stream, string localReplyBody) => Format(FormatterContext.For(stream, localReplyBody));

    public string Format(in FormatterContext context)
    {
        var buffer = Rent();
        Format(context, buffer);
        var text = buffer.ToString();
        buffer.Clear();
        return text;
    }

    /// <summary>Appends the formatted line to <paramref name="output"/>.</summary>
    public void Format(in FormatterContext context, StringBuilder output)
    {
        if (_text is not null)
        {
            foreach (var segment in _text)
            {
                segment.AppendText(context, output, _omitEmpty);
            }

            return;
        }

        var buffer = new ArrayBufferWriterPool();
        using (var json = new Utf8JsonWriter(buffer.Writer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            WriteObject(json, _json!, context);
            json.WriteEndObject();
        }

        // Envoy ends a JSON log line / body with a newline.
        output.Append(Encoding.UTF8.GetString(buffer.Writer.WrittenSpan)).Append('\n');
    }

    private static StringBuilder Rent()
    {
        var buffer = t_buffer ??= new StringBuilder(256);
        buffer.Clear();
        return buffer;
    }

    /// <summary>A per-thread buffer for one JSON value at a time (never the one the line is built in).</summary>
    private static StringBuilder Scratch()
    {
        var buffer = t_scratch ??= new StringBuilder(128);
        buffer.Clear();
        return buffer;
    }

    private void WriteObject(Utf8JsonWriter json, JsonNode[] nodes, in FormatterContext context)
    {
        foreach (var node in nodes)
        {
            if (node.Children is { } children)
            {
                json.WritePropertyName(node.Key);
                json.WriteStartObject();
                WriteObject(json, children, context);
                json.WriteEndObject();
                continue;
            }

            if (node.Constant is { } constant)
            {
                json.WritePropertyName(node.Key);
                WriteProto(json, constant);
                continue;
            }

            var segments = node.Segments!;
            if (segments.Length == 1 && segments[0].Operator is { } op)
            {
                // A value that is one operator keeps its type: numbers stay numbers, metadata stays structured.
                if (op.Number is { } number)
                {
                    if (number(context) is { } n)
                    {
                        json.WriteNumber(node.Key, n);
                    }
                    else if (!_omitEmpty)
                    {
                        json.WriteNull(node.Key);
                    }

                    continue;
                }

                if (op.Proto is { } proto)
                {
                    if (proto(context) is { } value)
                    {
                        json.WritePropertyName(node.Key);
                        WriteProto(json, value);
                    }
                    else if (!_omitEmpty)
                    {
                        json.WriteNull(node.Key);
                    }

                    continue;
                }

                var single = Scratch();
                if (segments[0].AppendValue(context, single))
                {
                    json.WriteString(node.Key, single.ToString());
                }
                else if (!_omitEmpty)
                {
                    json.WriteNull(node.Key);
                }

                continue;
            }

            var text = Scratch();
            foreach (var segment in segments)
            {
                segment.AppendText(context, text, _omitEmpty);
            }

            if (text.Length > 0 || !_omitEmpty)
            {
                json.WriteString(node.Key, text.ToString());
            }
        }
    }

    private static void WriteProto(Utf8JsonWriter json, Value value)
    {
        switch (value.KindCase)
        {
            case Value.KindOneofCase.StringValue:
                json.WriteStringValue(value.StringValue);
                break;
            case Value.KindOneofCase.NumberValue:
                json.WriteNumberValue(value.NumberValue);
                break;
            case Value.KindOneofCase.BoolValue:
                json.WriteBooleanValue(value.BoolValue);
                break;
            case Value.KindOneofCase.NullValue:
            case Value.KindOneofCase.None:
                json.WriteNullValue();
                break;
            default:
                json.WriteRawValue(Google.Protobuf.JsonFormatter.Default.Format(value));
                break;
        }
    }

    private static string ContentTypeOr(SubstitutionFormatString config, string fallback) =>
        config.ContentType.Length > 0 ? config.ContentType : fallback;

    private static string? ReadSource(DataSource source, string path, ConfigErrors errors)
    {
        switch (source.SpecifierCase)
        {
            case DataSource.SpecifierOneofCase.InlineString:
                return source.InlineString;
            case DataSource.SpecifierOneofCase.InlineBytes:
                return source.InlineBytes.ToStringUtf8();
            case DataSource.SpecifierOneofCase.Filename:
                try
                {
                    return File.ReadAllText(source.Filename);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    errors.Add(FieldPath.Field(path, "filename"), $"cannot read \"{source.Filename}\": {ex.Message}");
                    return null;
                }

            case DataSource.SpecifierOneofCase.EnvironmentVariable:
                if (Environment.GetEnvironmentVariable(source.EnvironmentVariable) is { } value)
                {
                    return value;
                }

                errors.Add(FieldPath.Field(path, "environment_variable"), $"environment variable \"{source.EnvironmentVariable}\" is not set");
                return null;
            default:
                errors.Add(path, "a data source is required");
                return null;
        }
    }

    private static JsonNode[] ParseJson(Struct format, string path, ConfigErrors errors)
    {
        var nodes = new List<JsonNode>();
        foreach (var (key, value) in format.Fields)
        {
            var keyPath = FieldPath.Key(path, key);
            switch (value.KindCase)
            {
                case Value.KindOneofCase.StringValue:
                    nodes.Add(new JsonNode(key, ParseText(value.StringValue, keyPath, errors), null, null));
                    break;
                case Value.KindOneofCase.StructValue:
                    nodes.Add(new JsonNode(key, null, ParseJson(value.StructValue, keyPath, errors), null));
                    break;
                case Value.KindOneofCase.NumberValue:
                case Value.KindOneofCase.BoolValue:
                case Value.KindOneofCase.NullValue:
                    nodes.Add(new JsonNode(key, null, null, value));
                    break;
                default:
                    // Envoy rejects lists in json_format too.
                    errors.Add(keyPath, "json_format values must be strings, numbers, booleans or nested objects");
                    break;
            }
        }

        return nodes.ToArray();
    }

    private static Segment[] ParseText(string format, string path, ConfigErrors errors)
    {
        var segments = new List<Segment>();
        var literal = new StringBuilder();
        var i = 0;
        while (i < format.Length)
        {
            var c = format[i];
            if (c != '%')
            {
                literal.Append(c);
                i++;
                continue;
            }

            if (i + 1 < format.Length && format[i + 1] == '%')
            {
                literal.Append('%');
                i += 2;
                continue;
            }

            var end = FindOperatorEnd(format, i);
            if (end < 0)
            {
                errors.Add(path, $"unterminated command operator at position {i} in \"{format}\"");
                break;
            }

            var token = format[(i + 1)..end];
            if (CommandOperator.Create(token, out var problem) is { } op)
            {
                if (literal.Length > 0)
                {
                    segments.Add(Segment.Literal(literal.ToString()));
                    literal.Clear();
                }

                segments.Add(new Segment(null, op));
            }
            else
            {
                errors.Add(path, $"%{token}%: {problem}");
            }

            i = end + 1;
        }

        if (literal.Length > 0)
        {
            segments.Add(Segment.Literal(literal.ToString()));
        }

        return segments.ToArray();
    }

    /// <summary>
    /// The index of the '%' closing the operator that starts at <paramref name="start"/>. An
    /// argument may itself hold '%' (<c>%START_TIME(%Y/%m/%d)%</c>), so after a '(' the operator
    /// ends at the first ')' followed by '%' or by ':digits%'.
    /// </summary>
    private static int FindOperatorEnd(string format, int start)
    {
        var i = start + 1;
        while (i < format.Length && (char.IsAsciiLetterUpper(format[i]) || char.IsAsciiDigit(format[i]) || format[i] == '_'))
        {
            i++;
        }

        if (i < format.Length && format[i] == '(')
        {
            for (var close = format.IndexOf(')', i); close >= 0; close = format.IndexOf(')', close + 1))
            {
                var after = close + 1;
                if (after < format.Length && format[after] == '%')
                {
                    return after;
                }

                if (after < format.Length && format[after] == ':')
                {
                    var digits = after + 1;
                    while (digits < format.Length && char.IsAsciiDigit(format[digits]))
                    {
                        digits++;
                    }

                    if (digits > after + 1 && digits < format.Length && format[digits] == '%')
                    {
                        return digits;
                    }
                }
            }

            return -1;
        }

        return format.IndexOf('%', start + 1);
    }

    /// <summary>One literal or command operator.</summary>
    private sealed class Segment
    {
        private readonly string? _literal;

        public Segment(string? literal, CommandOperator? op)
        {
            _literal = literal;
            Operator = op;
        }

        public CommandOperator? Operator { get; }

        public static Segment Literal(string text) => new(text, null);

        /// <summary>Appends the value, truncated to the operator's length; false when it has none.</summary>
        public bool AppendValue(in FormatterContext context, StringBuilder output)
        {
            var op = Operator!;
            var start = output.Length;
            if (!op.Append(context, output))
            {
                output.Length = start;
                return false;
            }

            if (op.MaxLength > 0 && output.Length - start > op.MaxLength)
            {
                output.Length = start + op.MaxLength;
            }

            return true;
        }

        /// <summary>Text form: a missing value prints <c>-</c> (nothing with omit_empty_values).</summary>
        public void AppendText(in FormatterContext context, StringBuilder output, bool omitEmpty)
        {
            if (_literal is not null)
            {
                output.Append(_literal);
                return;
            }

            if (!AppendValue(context, output) && !omitEmpty)
            {
                output.Append('-');
            }
        }
    }

    /// <summary>One key of a JSON format: a format string, a nested object or a constant.</summary>
    private sealed record JsonNode(string Key, Segment[]? Segments, JsonNode[]? Children, Value? Constant);

    /// <summary>A small reusable buffer for the JSON writer (one per thread).</summary>
    private readonly struct ArrayBufferWriterPool
    {
        [ThreadStatic]
        private static System.Buffers.ArrayBufferWriter<byte>? t_writer;

        public ArrayBufferWriterPool()
        {
            Writer = t_writer ??= new System.Buffers.ArrayBufferWriter<byte>(512);
            Writer.ResetWrittenCount();
        }

        public System.Buffers.ArrayBufferWriter<byte> Writer { get; }
    }
}
