using System.Text;
using Envoy.Config.Core.V3;
using Legate.Config;

namespace Legate.Tls;

/// <summary>
/// Reads the bytes of a <c>DataSource</c> (filename, inline_string, inline_bytes,
/// environment_variable) for certificates, keys, CAs and CRLs. Envoy reads these when the
/// configuration (or a secret) is loaded, so problems are load errors with the field path.
/// </summary>
internal static class DataSourceReader
{
    /// <summary>The bytes, or null after adding an error (also when nothing is set).</summary>
    public static byte[]? Read(DataSource? source, string path, ConfigErrors errors)
    {
        if (source is null)
        {
            return null;
        }

        try
        {
            return ReadOrThrow(source, path);
        }
        catch (ConfigException ex)
        {
            errors.AddFrom(ex);

            return null;
        }
    }

    /// <summary>The bytes; throws <see cref="ConfigException"/> when they cannot be read.</summary>
    public static byte[] ReadOrThrow(DataSource source, string path)
    {
        switch (source.SpecifierCase)
        {
            case DataSource.SpecifierOneofCase.InlineString:
                return Encoding.UTF8.GetBytes(source.InlineString);
            case DataSource.SpecifierOneofCase.InlineBytes:
                return source.InlineBytes.ToByteArray();
            case DataSource.SpecifierOneofCase.Filename:
                try
                {
                    return File.ReadAllBytes(source.Filename);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    throw new ConfigException(FieldPath.Field(path, "filename"), $"cannot read \"{source.Filename}\": {ex.Message}");
                }

            case DataSource.SpecifierOneofCase.EnvironmentVariable:
                var value = Environment.GetEnvironmentVariable(source.EnvironmentVariable);
                return value is null
                    ? throw new ConfigException(FieldPath.Field(path, "environment_variable"), $"environment variable \"{source.EnvironmentVariable}\" is not set")
                    : Encoding.UTF8.GetBytes(value);
            default:
                throw new ConfigException(path, "one of filename, inline_string, inline_bytes or environment_variable must be set");
        }
    }

    /// <summary>Where the data came from, for /certs and messages: the file name or "&lt;inline&gt;".</summary>
    public static string Describe(DataSource? source) => source?.SpecifierCase switch
    {
        DataSource.SpecifierOneofCase.Filename => source.Filename,
        DataSource.SpecifierOneofCase.EnvironmentVariable => "$" + source.EnvironmentVariable,
        null => string.Empty,
        _ => "<inline>",
    };
}
