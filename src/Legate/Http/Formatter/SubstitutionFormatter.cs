using System.Globalization;
using System.Text;
using System.Text.Json;
using Envoy.Config.Core.V3;
using Legate.Config;
using Legate.Http.Http1;

namespace Legate.Http.Formatter;

/// <summary>
/// Envoy's substitution format strings (<c>SubstitutionFormatString</c>: text_format, json_format)
/// with command operators such as <c>%RESPONSE_CODE%</c> and <c>%REQ(x-request-id)%</c>, compiled
/// once. Used by local_reply_config now and by access logs next. Operators Legate does not know
/// are config errors, never silently printed as text.
/// </summary>
internal sealed class SubstitutionFormatter
{
    private readonly Segment[]? _text;
    private readonly (string Key, Segment[] Value)[]? _json;

    private SubstitutionFormatter(Segment[]? text, (string, Segment[])[]? json, string contentType)
    {
        _text = text;
        _json = json;
        ContentType = contentType;
    }

    /// <summary>text/plain for text formats, application/json for JSON, or the configured content_type.</summary>
    public string ContentType { get; }

    public static SubstitutionFormatter? Compile(SubstitutionFormatString config, string path, ConfigErrors errors)
    {
        var count = errors.Errors.Count;
        SubstitutionFormatter? formatter = null;
        switch (config.FormatCase)
        {
#pragma warning disable CS0612 // text_format is deprecated in favour of text_format_source, yet widely used.
            case SubstitutionFormatString.FormatOneofCase.TextFormat:
                formatter = new SubstitutionFormatter(ParseText(config.TextFormat, FieldPath.Field(path, "text_format"), errors), null, ContentTypeOr(config, "text/plain"));
                break;
#pragma warning restore CS0612
            case SubstitutionFormatString.FormatOneofCase.TextFormatSource when config.TextFormatSource.SpecifierCase == DataSource.SpecifierOneofCase.InlineString:
                formatter = new SubstitutionFormatter(ParseText(config.TextFormatSource.InlineString, FieldPath.Field(path, "text_format_source"), errors), null, ContentTypeOr(config, "text/plain"));
                break;
            case SubstitutionFormatString.FormatOneofCase.JsonFormat:
                var fields = new List<(string, Segment[])>();
                foreach (var (key, value) in config.JsonFormat.Fields)
                {
                    if (value.KindCase != Google.Protobuf.WellKnownTypes.Value.KindOneofCase.StringValue)
                    {
                        errors.Add(FieldPath.Key(FieldPath.Field(path, "json_format"), key), "only string values are supported in json_format yet");
                        continue;
                    }

                    fields.Add((key, ParseText(value.StringValue, FieldPath.Key(FieldPath.Field(path, "json_format"), key), errors)));
                }

                formatter = new SubstitutionFormatter(null, fields.ToArray(), ContentTypeOr(config, "application/json"));
                break;
            default:
                errors.Add(path, "only text_format, inline text_format_source and json_format are supported yet");
                break;
        }

        if (config.Formatters.Count > 0)
        {
            errors.Add(FieldPath.Field(path, "formatters"), "formatter extensions are not supported yet");
        }

        return errors.Errors.Count > count ? null : formatter;
    }

    /// <summary>Formats for <paramref name="stream"/>; <paramref name="localReplyBody"/> is what %LOCAL_REPLY_BODY% prints.</summary>
    public string Format(HttpStream stream, string localReplyBody)
    {
        if (_text is not null)
        {
            var text = new StringBuilder();
            foreach (var segment in _text)
            {
                text.Append(segment.Evaluate(stream, localReplyBody) ?? "-");
            }

            return text.ToString();
        }

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            foreach (var (key, segments) in _json!)
            {
                if (segments.Length == 1 && segments[0].IsOperator)
                {
                    var value = segments[0].Evaluate(stream, localReplyBody);
                    if (value is null)
                    {
                        json.WriteNull(key);
                    }
                    else if (segments[0].IsNumeric && long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var number))
                    {
                        json.WriteNumber(key, number);
                    }
                    else
                    {
                        json.WriteString(key, value);
                    }

                    continue;
                }

                var text = new StringBuilder();
                foreach (var segment in segments)
                {
                    text.Append(segment.Evaluate(stream, localReplyBody) ?? "-");
                }

                json.WriteString(key, text.ToString());
            }

            json.WriteEndObject();
        }

        // Envoy ends a JSON log line / body with a newline.
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>
    /// A header value of <c>request_headers_to_add</c> / <c>response_headers_to_add</c> (Envoy's
    /// header formatter): the same command operators, but one that has no value prints nothing
    /// instead of <c>-</c>, so an all-empty value can be left out.
    /// </summary>
    public static SubstitutionFormatter? CompileHeaderValue(string format, string path, ConfigErrors errors)
    {
        var count = errors.Errors.Count;
        var segments = ParseText(format, path, errors);
        return errors.Errors.Count > count ? null : new SubstitutionFormatter(segments, null, "text/plain");
    }

    /// <summary>Formats a header value compiled by <see cref="CompileHeaderValue"/>.</summary>
    public string FormatHeaderValue(HttpStream stream)
    {
        var text = _text!;
        if (text.Length == 1)
        {
            return text[0].Evaluate(stream, string.Empty) ?? string.Empty;
        }

        var builder = new StringBuilder();
        foreach (var segment in text)
        {
            builder.Append(segment.Evaluate(stream, string.Empty));
        }

        return builder.ToString();
    }

    private static string ContentTypeOr(SubstitutionFormatString config, string fallback) =>
        config.ContentType.Length > 0 ? config.ContentType : fallback;

    /// <summary>
    /// The '%' closing the operator opened at <paramref name="start"/>: an argument in parentheses
    /// may itself contain '%' (<c>%START_TIME(%Y-%m-%d)%</c>), so it is skipped as a whole.
    /// </summary>
    private static int OperatorEnd(string format, int start)
    {
        var j = start + 1;
        while (j < format.Length && (char.IsAsciiLetterUpper(format[j]) || char.IsAsciiDigit(format[j]) || format[j] == '_'))
        {
            j++;
        }

        if (j < format.Length && format[j] == '(')
        {
            var close = format.IndexOf(')', j);
            if (close > 0)
            {
                return format.IndexOf('%', close);
            }
        }

        return format.IndexOf('%', start + 1);
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

            var end = OperatorEnd(format, i);
            if (end < 0)
            {
                errors.Add(path, $"unterminated command operator at position {i} in \"{format}\"");
                break;
            }

            var token = format[(i + 1)..end];
            if (Segment.TryCreate(token, out var segment, out var problem))
            {
                if (literal.Length > 0)
                {
                    segments.Add(Segment.Literal(literal.ToString()));
                    literal.Clear();
                }

                segments.Add(segment);
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

    /// <summary>One literal or command operator.</summary>
    private sealed class Segment
    {
        private readonly string? _literal;
        private readonly Func<HttpStream, string, string?>? _evaluate;

        private Segment(string? literal, Func<HttpStream, string, string?>? evaluate, bool numeric)
        {
            _literal = literal;
            _evaluate = evaluate;
            IsNumeric = numeric;
        }

        public bool IsOperator => _evaluate is not null;

        public bool IsNumeric { get; }

        public static Segment Literal(string text) => new(text, null, false);

        public string? Evaluate(HttpStream stream, string localReplyBody) => _evaluate is null ? _literal : _evaluate(stream, localReplyBody);

        public static bool TryCreate(string token, out Segment segment, out string problem)
        {
            problem = string.Empty;
            segment = null!;
            var name = token;
            string? argument = null;
            int? maxLength = null;
            var open = token.IndexOf('(');
            if (open >= 0)
            {
                var close = token.LastIndexOf(')');
                if (close < open)
                {
                    problem = "missing ')'";
                    return false;
                }

                name = token[..open];
                argument = token[(open + 1)..close];
                var rest = token[(close + 1)..];
                if (rest.StartsWith(':') && int.TryParse(rest.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var length))
                {
                    maxLength = length;
                }
            }

            Func<HttpStream, string, string?>? evaluate = name switch
            {
                "LOCAL_REPLY_BODY" => static (_, body) => body,
                "RESPONSE_CODE" => static (s, _) => s.Info.ResponseCode.ToString(CultureInfo.InvariantCulture),
                "RESPONSE_FLAGS" => static (s, _) => ResponseFlagNames.Format(s.Info.ResponseFlags),
                "RESPONSE_FLAGS_LONG" => static (s, _) => ResponseFlagNames.FormatLong(s.Info.ResponseFlags),
                "RESPONSE_CODE_DETAILS" => static (s, _) => s.Info.ResponseCodeDetails,
                "PROTOCOL" => static (s, _) => s.Info.Protocol,
                "ROUTE_NAME" => static (s, _) => string.IsNullOrEmpty(s.Info.RouteName) ? null : s.Info.RouteName,
                "VIRTUAL_CLUSTER_NAME" => static (_, _) => null,
                "UPSTREAM_CLUSTER" => static (s, _) => s.Info.UpstreamCluster?.Name,
                "UPSTREAM_HOST" => static (s, _) => s.Info.UpstreamRemoteAddress is { } a ? Network.SocketAddresses.Format(a) : null,
                "UPSTREAM_TRANSPORT_FAILURE_REASON" => static (s, _) => s.Info.UpstreamTransportFailureReason,
                "DOWNSTREAM_REMOTE_ADDRESS" => static (s, _) => s.Info.DownstreamRemoteAddress is { } a ? Network.SocketAddresses.Format(a) : null,
                "DOWNSTREAM_LOCAL_ADDRESS" => static (s, _) => s.Info.DownstreamLocalAddress is { } a ? Network.SocketAddresses.Format(a) : null,
                "START_TIME" when argument is { Length: > 0 } => StartTime(argument),
                "HOSTNAME" => static (_, _) => HostName.Value,
                "UPSTREAM_METADATA" when argument is not null => UpstreamMetadata(argument),
                "UPSTREAM_REMOTE_ADDRESS" => static (s, _) => s.Info.UpstreamRemoteAddress is { } a ? Network.SocketAddresses.Format(a) : null,
                "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => static (s, _) => s.Info.DownstreamRemoteAddress?.Address.ToString(),
                "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => static (s, _) => s.Info.DownstreamLocalAddress?.Address.ToString(),
                "DOWNSTREAM_REMOTE_PORT" => static (s, _) => s.Info.DownstreamRemoteAddress?.Port.ToString(CultureInfo.InvariantCulture),
                "DOWNSTREAM_LOCAL_PORT" => static (s, _) => s.Info.DownstreamLocalAddress?.Port.ToString(CultureInfo.InvariantCulture),
                "START_TIME" => static (s, _) => s.Info.StartTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                "BYTES_RECEIVED" => static (s, _) => s.Info.BytesReceived.ToString(CultureInfo.InvariantCulture),
                "DURATION" => static (s, _) => ((long)s.Info.Duration.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
                "REQ" when argument is not null => RequestHeader(argument),
                "RESP" when argument is not null => ResponseHeader(argument),
                _ => null,
            };
            if (evaluate is null)
            {
                problem = name switch
                {
                    "REQ" or "RESP" => "needs a header name, e.g. %REQ(x-request-id)%",
                    "UPSTREAM_METADATA" => "needs a namespace and a key, e.g. %UPSTREAM_METADATA([\"envoy.lb\", \"version\"])%",
                    "START_TIME" => StartTimeFormat.Parse(argument ?? string.Empty, out var why) is null ? why : "invalid format",
                    _ => "command operator not supported yet",
                };
                return false;
            }

            if (maxLength is { } max)
            {
                var inner = evaluate;
                evaluate = (s, b) => inner(s, b) is { Length: > 0 } v && v.Length > max ? v[..max] : inner(s, b);
            }

            var numeric = name is "RESPONSE_CODE" or "BYTES_RECEIVED" or "DURATION";
            segment = new Segment(null, evaluate, numeric);
            return true;
        }

        private static readonly Lazy<string> HostName = new(System.Net.Dns.GetHostName);

        private static Func<HttpStream, string, string?>? StartTime(string argument)
        {
            var format = StartTimeFormat.Parse(argument, out _);
            return format is null ? null : (s, _) => format.Format(s.Info.StartTime);
        }

        /// <summary>
        /// <c>%UPSTREAM_METADATA(["namespace", "key", …])%</c> (the header formatter's JSON form) or
        /// <c>%UPSTREAM_METADATA(namespace:key:…)%</c>: the chosen host's filter metadata; strings,
        /// numbers and booleans print, anything else (or nothing) prints nothing.
        /// </summary>
        private static Func<HttpStream, string, string?>? UpstreamMetadata(string argument)
        {
            string[] keys;
            if (argument.TrimStart().StartsWith('['))
            {
                try
                {
                    keys = JsonSerializer.Deserialize<string[]>(argument) ?? [];
                }
                catch (JsonException)
                {
                    return null;
                }
            }
            else
            {
                keys = argument.Split(':');
            }

            if (keys.Length < 2)
            {
                return null;
            }

            return (s, _) =>
            {
                if (s.Info.UpstreamHost?.Metadata is not { } metadata || !metadata.FilterMetadata.TryGetValue(keys[0], out var structValue))
                {
                    return null;
                }

                Google.Protobuf.WellKnownTypes.Value? value = null;
                var fields = structValue.Fields;
                for (var i = 1; i < keys.Length; i++)
                {
                    if (fields is null || !fields.TryGetValue(keys[i], out value))
                    {
                        return null;
                    }

                    fields = value.KindCase == Google.Protobuf.WellKnownTypes.Value.KindOneofCase.StructValue ? value.StructValue.Fields : null;
                }

                return value?.KindCase switch
                {
                    Google.Protobuf.WellKnownTypes.Value.KindOneofCase.StringValue => value.StringValue,
                    Google.Protobuf.WellKnownTypes.Value.KindOneofCase.NumberValue => value.NumberValue.ToString(CultureInfo.InvariantCulture),
                    Google.Protobuf.WellKnownTypes.Value.KindOneofCase.BoolValue => value.BoolValue ? "true" : "false",
                    _ => null,
                };
            };
        }

        private static Func<HttpStream, string, string?> RequestHeader(string argument)
        {
            // %REQ(X?Y)%: X, else Y. ":path" and friends read the pseudo headers.
            var names = argument.Split('?', 2);
            return (s, _) => HeaderValue(s.RequestHeaders, names[0]) ?? (names.Length > 1 ? HeaderValue(s.RequestHeaders, names[1]) : null);
        }

        private static Func<HttpStream, string, string?> ResponseHeader(string argument)
        {
            var names = argument.Split('?', 2);
            return (s, _) => s.ResponseHeaders is not { } head ? null
                : head.Headers.GetValue(names[0].ToLowerInvariant()) ?? (names.Length > 1 ? head.Headers.GetValue(names[1].ToLowerInvariant()) : null);
        }

        private static string? HeaderValue(HttpRequestHead? head, string name)
        {
            if (head is null)
            {
                return null;
            }

            return name.ToLowerInvariant() switch
            {
                ":path" => head.Path,
                ":method" => head.Method,
                ":authority" => Encoding.Latin1.GetString(head.Authority),
                ":scheme" => head.Scheme ?? "http",
                var lower => head.Headers.GetValue(lower),
            };
        }
    }
}
