using System.Text;
using Envoy.Config.Accesslog.V3;
using Legate.Config;
using Legate.Http.Formatter;
using ProtoLocalReplyConfig = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.LocalReplyConfig;

namespace Legate.Http;

/// <summary>
/// The HTTP connection manager's <c>local_reply_config</c>: the first mapper whose filter matches
/// a local reply may change its status and body and add headers; then <c>body_format</c> (or the
/// mapper's override) formats the body, with <c>%LOCAL_REPLY_BODY%</c> standing for the text the
/// proxy chose. Without config the reply goes out as the proxy made it.
/// </summary>
internal class LocalReplyConfig
{
    private readonly Mapper[] _mappers;
    private readonly SubstitutionFormatter? _bodyFormat;

    private LocalReplyConfig(Mapper[] mappers, SubstitutionFormatter? bodyFormat)
    {
        _mappers = mappers;
        _bodyFormat = bodyFormat;
    }

    public static LocalReplyConfig Default { get; } = new([], null);

    public static LocalReplyConfig Compile(ProtoLocalReplyConfig config, string path, ConfigErrors errors)
    {
        var mappers = new List<Mapper>();
        for (var i = 0; i < config.Mappers.Count; i++)
        {
            var mapperPath = FieldPath.Index(FieldPath.Field(path, "mappers"), i);
            var proto = config.Mappers[i];
            var filter = LocalReplyFilter.Compile(proto.Filter, FieldPath.Field(mapperPath, "filter"), errors);
            var body = proto.Body is { } source ? ReadInline(source, FieldPath.Field(mapperPath, "body"), errors) : null;
            var format = proto.BodyFormatOverride is { } overrideFormat
                ? SubstitutionFormatter.Compile(overrideFormat, FieldPath.Field(mapperPath, "body_format_override"), errors)
                : null;
            var headers = new List<(string, string, bool)>();
            foreach (var option in proto.HeadersToAdd)
            {
#pragma warning disable CS0612 // append is deprecated, yet Envoy still honours it when set.
                var append = option.Append ?? option.AppendAction == Envoy.Config.Core.V3.HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd;
#pragma warning restore CS0612
                headers.Add((option.Header.Key.ToLowerInvariant(), option.Header.Value, append));
            }

            if (filter is not null)
            {
                mappers.Add(new Mapper(filter, proto.StatusCode is { } status ? (int)status : null, body, format, headers.ToArray()));
            }
        }

        var bodyFormat = config.BodyFormat is { } bodyFormatConfig
            ? SubstitutionFormatter.Compile(bodyFormatConfig, FieldPath.Field(path, "body_format"), errors)
            : null;
        return mappers.Count == 0 && bodyFormat is null ? Default : new LocalReplyConfig(mappers.ToArray(), bodyFormat);
    }

    /// <summary>The status, body and content type to send for a local reply; may add response headers.</summary>
    public virtual LocalReply Map(HttpStream stream, int status, byte[] body)
    {
        if (_mappers.Length == 0 && _bodyFormat is null)
        {
            return new LocalReply(status, body, null, null);
        }

        // Filters look at the reply as it would be sent: its code and the stream's flags.
        stream.Info.ResponseCode = status;
        var text = Encoding.UTF8.GetString(body);
        var format = _bodyFormat;
        (string, string, bool)[]? headers = null;
        foreach (var mapper in _mappers)
        {
            if (!mapper.Filter.Matches(stream))
            {
                continue;
            }

            status = mapper.Status ?? status;
            text = mapper.Body ?? text;
            format = mapper.Format ?? format;
            headers = mapper.Headers;
            break;
        }

        stream.Info.ResponseCode = status;
        if (format is null)
        {
            return new LocalReply(status, Encoding.UTF8.GetBytes(text), null, headers);
        }

        var formatted = format.Format(stream, text);
        return new LocalReply(status, Encoding.UTF8.GetBytes(formatted), Encoding.ASCII.GetBytes(format.ContentType), headers);
    }

    private static string? ReadInline(Envoy.Config.Core.V3.DataSource source, string path, ConfigErrors errors)
    {
        switch (source.SpecifierCase)
        {
            case Envoy.Config.Core.V3.DataSource.SpecifierOneofCase.InlineString:
                return source.InlineString;
            case Envoy.Config.Core.V3.DataSource.SpecifierOneofCase.InlineBytes:
                return source.InlineBytes.ToStringUtf8();
            case Envoy.Config.Core.V3.DataSource.SpecifierOneofCase.Filename:
                try
                {
                    return File.ReadAllText(source.Filename);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    errors.Add(FieldPath.Field(path, "filename"), $"cannot read \"{source.Filename}\": {ex.Message}");
                    return null;
                }

            default:
                errors.Add(path, "only inline_string, inline_bytes and filename bodies are supported");
                return null;
        }
    }

    private sealed record Mapper(LocalReplyFilter Filter, int? Status, string? Body, SubstitutionFormatter? Format, (string Name, string Value, bool Append)[] Headers);
}

/// <summary>A local reply as it will be sent.</summary>
internal readonly record struct LocalReply(int Status, byte[] Body, byte[]? ContentType, (string Name, string Value, bool Append)[]? Headers);

/// <summary>A local reply mapper's filter: Envoy's access log filters, all of them (see <see cref="Legate.AccessLog.AccessLogFilter"/>).</summary>
internal sealed class LocalReplyFilter
{
    private readonly Legate.AccessLog.AccessLogFilter _filter;

    private LocalReplyFilter(Legate.AccessLog.AccessLogFilter filter) => _filter = filter;

    public bool Matches(HttpStream stream) => _filter.Evaluate(FormatterContext.For(stream));

    public static LocalReplyFilter? Compile(AccessLogFilter filter, string path, ConfigErrors errors) =>
        Legate.AccessLog.AccessLogFilter.Compile(filter, path, errors) is { } compiled ? new LocalReplyFilter(compiled) : null;
}
