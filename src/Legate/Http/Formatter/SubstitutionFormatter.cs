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

    private static string ContentTypeOr(SubstitutionFormatString config, string fallback) =>
        config.ContentType.Length > 0 ? config.ContentType : fallback;

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

            var end = format.IndexOf('%', i + 1);
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
                "START_TIME" => static (s, _) => s.Info.StartTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                "BYTES_RECEIVED" => static (s, _) => s.Info.BytesReceived.ToString(CultureInfo.InvariantCulture),
                "DURATION" => static (s, _) => ((long)s.Info.Duration.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
                "REQ" when argument is not null => RequestHeader(argument),
                "RESP" when argument is not null => ResponseHeader(argument),
                _ => null,
            };
            if (evaluate is null)
            {
                problem = name is "REQ" or "RESP" ? "needs a header name, e.g. %REQ(x-request-id)%" : "command operator not supported yet";
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
