using Legate.Config;
using Legate.Http.Http1;
using CustomTagProto = Envoy.Type.Tracing.V3.CustomTag;

namespace Legate.Tracing;

/// <summary>
/// One HCM <c>tracing.custom_tags</c> entry (Envoy's CustomTag): a literal, an environment variable
/// read once at load, or a request header (all its values joined with a comma), each with a
/// <c>default_value</c>; an empty result sets no tag.
/// </summary>
internal sealed class CustomTag
{
    private readonly string _tag;
    private readonly string? _fixedValue;
    private readonly string? _header;
    private readonly string _default;

    private CustomTag(string tag, string? fixedValue, string? header, string defaultValue)
    {
        _tag = tag;
        _fixedValue = fixedValue;
        _header = header;
        _default = defaultValue;
    }

    public static CustomTag? Compile(CustomTagProto proto, string path, ConfigErrors errors)
    {
        switch (proto.TypeCase)
        {
            case CustomTagProto.TypeOneofCase.Literal:
                return new CustomTag(proto.Tag, proto.Literal.Value, null, string.Empty);
            case CustomTagProto.TypeOneofCase.Environment:
                var env = Environment.GetEnvironmentVariable(proto.Environment.Name);
                return new CustomTag(proto.Tag, string.IsNullOrEmpty(env) ? proto.Environment.DefaultValue : env, null, string.Empty);
            case CustomTagProto.TypeOneofCase.RequestHeader:
                return new CustomTag(proto.Tag, null, proto.RequestHeader.Name.ToLowerInvariant(), proto.RequestHeader.DefaultValue);
            case CustomTagProto.TypeOneofCase.Metadata:
                errors.Add(FieldPath.Field(path, "metadata"), "metadata custom tags are not implemented yet");
                return null;
            default:
                errors.Add(path, "one of literal, environment, request_header or metadata is required");
                return null;
        }
    }

    public void Apply(Span span, HttpHeaderMap requestHeaders)
    {
        var value = _fixedValue ?? HeaderValue(requestHeaders) ?? _default;
        if (value.Length > 0)
        {
            span.SetTag(_tag, value);
        }
    }

    private string? HeaderValue(HttpHeaderMap headers)
    {
        var index = headers.IndexOf(_header.AsSpan());
        if (index < 0)
        {
            return null;
        }

        var first = headers.GetValue(index);
        var next = headers.IndexOf(_header.AsSpan(), index + 1);
        if (next < 0)
        {
            return first;
        }

        var joined = new System.Text.StringBuilder(first);
        for (; next >= 0; next = headers.IndexOf(_header.AsSpan(), next + 1))
        {
            joined.Append(',').Append(headers.GetValue(next));
        }

        return joined.ToString();
    }
}
