using System.Text.Json;
using Envoy.Config.Bootstrap.V3;
using Google.Protobuf;
using YamlDotNet.Serialization;

namespace Legate.Config;

/// <summary>
/// Loads the bootstrap the way Envoy does: <c>-c</c> file (YAML, JSON or binary proto), then
/// <c>--config-yaml</c> merged on top; with neither, the built-in demo configuration.
/// TEMPORARY STUB: replaced by the descriptor-guided reader and validators.
/// </summary>
internal static class BootstrapLoader
{
    public const string DefaultConfigName = "<built-in default config>";

    public static string ReadDefaultConfig()
    {
        using var stream = typeof(BootstrapLoader).Assembly.GetManifestResourceStream("Legate.default-config.yaml")
            ?? throw new InvalidOperationException("default config resource missing");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    public static LoadedBootstrap Load(string? configPath, string? configYaml)
    {
        var source = configPath ?? (configYaml is null ? DefaultConfigName : "--config-yaml");
        var bootstrap = new Bootstrap();
        if (configPath is not null)
        {
            bootstrap.MergeFrom(ParseYaml(File.ReadAllText(configPath)));
        }
        else if (configYaml is null)
        {
            bootstrap.MergeFrom(ParseYaml(ReadDefaultConfig()));
        }

        if (configYaml is not null)
        {
            bootstrap.MergeFrom(ParseYaml(configYaml));
        }

        return new LoadedBootstrap(bootstrap, source, Array.Empty<ConfigError>());
    }

    private static Bootstrap ParseYaml(string text)
    {
        var yaml = new DeserializerBuilder().Build().Deserialize<object>(text);
        var json = JsonSerializer.Serialize(yaml);
        var parser = new JsonParser(JsonParser.Settings.Default.WithTypeRegistry(ApiTypes.Registry).WithIgnoreUnknownFields(false));
        return parser.Parse<Bootstrap>(json);
    }
}
