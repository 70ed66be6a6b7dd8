using Envoy.Config.Bootstrap.V3;
using Google.Protobuf;
using Legate.Config.Extensions;
using Legate.Config.Semantic;
using Legate.Config.Validation;

namespace Legate.Config;

/// <summary>
/// Loads the bootstrap the way Envoy does: the <c>-c</c> file (YAML, JSON or binary proto), then
/// <c>--config-yaml</c> merged on top (proto merge: scalars replace, lists append); with
/// neither, the built-in demo configuration. Then every check runs — the protoc-gen-validate
/// rules of the protos, extension references, Envoy's semantic checks — and all errors found are
/// reported together. Fields that are parsed but not acted on yet come back as warnings.
/// </summary>
internal static class BootstrapLoader
{
    public const string DefaultConfigName = "<built-in default config>";

    public static string ReadDefaultConfig()
    {
        using var stream = typeof(BootstrapLoader).Assembly.GetManifestResourceStream("Legate.default-config.yaml")
            ?? throw new InvalidOperationException("the built-in default config is missing from the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <exception cref="ConfigException">The configuration cannot be read or does not pass the checks.</exception>
    public static LoadedBootstrap Load(string? configPath, string? configYaml)
    {
        var errors = new ConfigErrors();
        var bootstrap = new Bootstrap();
        string source;
        if (configPath is not null)
        {
            source = configPath;
            bootstrap.MergeFrom(ReadFile(configPath, errors));
        }
        else if (configYaml is null)
        {
            source = DefaultConfigName;
            bootstrap.MergeFrom(Parse(ReadDefaultConfig(), ConfigFormat.Yaml, errors));
        }
        else
        {
            // --config-yaml alone is the whole document: its positions are the ones to report.
            source = "--config-yaml";
            bootstrap.MergeFrom(Parse(configYaml, ConfigFormat.Yaml, errors));
            configYaml = null;
        }

        if (configYaml is not null)
        {
            // Positions of the overlay refer to the --config-yaml text; paths are shared.
            var overlayErrors = new ConfigErrors();
            var overlay = Parse(configYaml, ConfigFormat.Yaml, overlayErrors);
            foreach (var e in overlayErrors.Errors)
            {
                errors.Add(e.Path, "in --config-yaml: " + e.Message, e.Position);
            }

            bootstrap.MergeFrom(overlay);
        }

        // Values that failed to parse are missing from the message; checking it now would only
        // report confusing follow-on errors.
        errors.ThrowIfAny();

        Check(bootstrap, errors);
        errors.ThrowIfAny();
        ImplementedFields.Warn(bootstrap, "", errors);
        return new LoadedBootstrap(bootstrap, source, errors.Warnings, errors.SourceMap);
    }

    /// <summary>Every check a parsed bootstrap goes through, in Envoy's order: field rules, extensions, semantics.</summary>
    internal static void Check(Bootstrap bootstrap, ConfigErrors errors)
    {
        PgvValidator.Validate(bootstrap, "", errors);
        ExtensionChecker.Check(bootstrap, "", errors);
        BootstrapValidator.Validate(bootstrap, errors);
        DataSourceChecker.Check(bootstrap, errors);
    }

    private static Bootstrap ReadFile(string path, ConfigErrors errors)
    {
        if (path.EndsWith(".pb_text", StringComparison.OrdinalIgnoreCase))
        {
            throw new ConfigException("", $"unable to load '{path}': the .pb_text (protobuf text format) is not supported; use YAML, JSON or binary .pb");
        }

        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException("", $"unable to read file '{path}': {e.Message}");
        }

        if (path.EndsWith(".pb", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                return Bootstrap.Parser.ParseFrom(bytes);
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new ConfigException("", $"unable to parse '{path}' as a binary envoy.config.bootstrap.v3.Bootstrap: {e.Message}");
            }
        }

        string text;
        try
        {
            text = new System.Text.UTF8Encoding(false, true).GetString(bytes);
        }
        catch (System.Text.DecoderFallbackException)
        {
            throw new ConfigException("", $"unable to read file '{path}': it is not UTF-8 text");
        }

        return Parse(text, ConfigDocument.FormatOf(path), errors);
    }

    private static Bootstrap Parse(string text, ConfigFormat format, ConfigErrors errors)
    {
        var node = ConfigDocument.Parse(text, format);
        return new ProtoConverter(errors).Convert<Bootstrap>(node);
    }
}
