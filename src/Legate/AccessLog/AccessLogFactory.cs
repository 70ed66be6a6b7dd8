using Envoy.Extensions.AccessLoggers.File.V3;
using Envoy.Extensions.AccessLoggers.Stream.V3;
using Google.Protobuf.Collections;
using Legate.Config;
using Legate.Http.Formatter;
using ProtoAccessLog = Envoy.Config.Accesslog.V3.AccessLog;

namespace Legate.AccessLog;

/// <summary>
/// Compiles <c>access_log</c> lists (HCM, listener, admin) into <see cref="AccessLogInstance"/>s:
/// <c>envoy.access_loggers.file</c>, <c>envoy.access_loggers.stdout</c> and
/// <c>envoy.access_loggers.stderr</c>, each with its filter and format (Envoy's default format
/// when none is given).
/// </summary>
internal static class AccessLogFactory
{
    public static AccessLogInstance[] Compile(RepeatedField<ProtoAccessLog> logs, string path, ConfigErrors errors, AccessLogManager manager, Runtime.RuntimeLoader? runtime = null)
    {
        if (logs.Count == 0)
        {
            return [];
        }

        var compiled = new List<AccessLogInstance>();
        for (var i = 0; i < logs.Count; i++)
        {
            if (Compile(logs[i], FieldPath.Index(path, i), errors, manager, runtime) is { } log)
            {
                compiled.Add(log);
            }
        }

        return compiled.ToArray();
    }

    public static AccessLogInstance? Compile(ProtoAccessLog log, string path, ConfigErrors errors, AccessLogManager manager, Runtime.RuntimeLoader? runtime = null)
    {
        var count = errors.Errors.Count;
        var filter = log.Filter is { } filterConfig ? AccessLogFilter.Compile(filterConfig, FieldPath.Field(path, "filter"), errors, runtime) : null;
        var configPath = FieldPath.Field(path, "typed_config");
        string? filePath = null;
        SubstitutionFormatter? formatter = null;
        var any = log.TypedConfig;
        if (any is null)
        {
            // Envoy makes an empty config of the named logger's type when typed_config is absent.
            (filePath, formatter) = log.Name switch
            {
                "envoy.access_loggers.stdout" => ("/dev/stdout", SubstitutionFormatter.Default),
                "envoy.access_loggers.stderr" => ("/dev/stderr", SubstitutionFormatter.Default),
                "envoy.access_loggers.file" or "envoy.file_access_log" => (null, null),
                _ => (null, null),
            };
            if (filePath is null)
            {
                errors.Add(path, log.Name is "envoy.access_loggers.file" or "envoy.file_access_log"
                    ? "envoy.access_loggers.file needs a typed_config with a path"
                    : $"access logger '{log.Name}' needs a typed_config");
            }
        }
        else if (any.Is(FileAccessLog.Descriptor))
        {
            var file = any.Unpack<FileAccessLog>();
            filePath = file.Path;
            formatter = FileFormat(file, configPath, errors);
        }
        else if (any.Is(StdoutAccessLog.Descriptor))
        {
            var stdout = any.Unpack<StdoutAccessLog>();
            filePath = "/dev/stdout";
            formatter = stdout.LogFormat is { } format ? SubstitutionFormatter.Compile(format, FieldPath.Field(configPath, "log_format"), errors) : SubstitutionFormatter.Default;
        }
        else if (any.Is(StderrAccessLog.Descriptor))
        {
            var stderr = any.Unpack<StderrAccessLog>();
            filePath = "/dev/stderr";
            formatter = stderr.LogFormat is { } format ? SubstitutionFormatter.Compile(format, FieldPath.Field(configPath, "log_format"), errors) : SubstitutionFormatter.Default;
        }
        else
        {
            // The extension checker rejects unknown and unimplemented loggers first; this is a safety net.
            errors.Add(configPath, $"access logger '{any.TypeUrl}' is not supported yet");
        }

        if (errors.Errors.Count > count || filePath is null || formatter is null)
        {
            return null;
        }

        try
        {
            return new AccessLogInstance(filter, formatter, manager.GetOrOpen(filePath));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add(FieldPath.Field(configPath, "path"), $"cannot open access log file \"{filePath}\": {ex.Message}");
            return null;
        }
    }

    private static SubstitutionFormatter? FileFormat(FileAccessLog file, string path, ConfigErrors errors)
    {
        switch (file.AccessLogFormatCase)
        {
#pragma warning disable CS0612 // format, json_format and typed_json_format are deprecated for log_format, yet still honoured by Envoy.
            case FileAccessLog.AccessLogFormatOneofCase.Format:
                return SubstitutionFormatter.CompileText(file.Format, FieldPath.Field(path, "format"), errors, omitEmpty: false);
            case FileAccessLog.AccessLogFormatOneofCase.JsonFormat:
                return SubstitutionFormatter.CompileJson(file.JsonFormat, FieldPath.Field(path, "json_format"), errors, omitEmpty: false);
            case FileAccessLog.AccessLogFormatOneofCase.TypedJsonFormat:
                return SubstitutionFormatter.CompileJson(file.TypedJsonFormat, FieldPath.Field(path, "typed_json_format"), errors, omitEmpty: false);
#pragma warning restore CS0612
            case FileAccessLog.AccessLogFormatOneofCase.LogFormat:
                return SubstitutionFormatter.Compile(file.LogFormat, FieldPath.Field(path, "log_format"), errors);
            default:
                return SubstitutionFormatter.Default;
        }
    }
}
