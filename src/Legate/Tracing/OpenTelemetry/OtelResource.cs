using Envoy.Extensions.Tracers.Opentelemetry.ResourceDetectors.V3;
using Legate.Config;
using Legate.Server.Logging;

namespace Legate.Tracing.OpenTelemetry;

/// <summary>
/// The OTLP resource every exported span belongs to (Envoy's ResourceProvider): <c>service.name</c>
/// (<c>service_name</c>, default <c>unknown_service:envoy</c>), then each of <c>resource_detectors</c>
/// in order, a later attribute replacing an earlier one of the same key (OpenTelemetry's resource
/// merge). Detected once, when the tracer is built.
/// </summary>
internal sealed class OtelResource
{
    public const string EnvironmentVariable = "OTEL_RESOURCE_ATTRIBUTES";

    /// <summary>
    /// Where Dynatrace's OneAgent or operator puts its enrichment files, in Envoy's order: an
    /// indirection file (relative to the working directory) whose content is the path of the real
    /// one, then the operator's two files.
    /// </summary>
    public static readonly string[] DynatraceMetadataFiles =
    [
        "dt_metadata_e617c525669e072eebe3d0f08212e8f2.properties",
        "/var/lib/dynatrace/enrichment/dt_metadata.properties",
        "/var/lib/dynatrace/enrichment/dt_host_metadata.properties",
    ];

    private readonly List<KeyValuePair<string, string>> _attributes = [];

    /// <summary>The attributes in first-set order (service.name first).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Attributes => _attributes;

    public string ServiceName => Find("service.name") ?? string.Empty;

    public string? Find(string key)
    {
        foreach (var (k, v) in _attributes)
        {
            if (k == key)
            {
                return v;
            }
        }

        return null;
    }

    private void Set(string key, string value)
    {
        for (var i = 0; i < _attributes.Count; i++)
        {
            if (_attributes[i].Key == key)
            {
                _attributes[i] = new(key, value);
                return;
            }
        }

        _attributes.Add(new(key, value));
    }

    /// <summary>
    /// Builds the resource from the tracer's config. The extension checker has already admitted only
    /// implemented detectors (environment, static_config, dynatrace); anything else is reported at
    /// <paramref name="path"/>.
    /// </summary>
    public static OtelResource Create(Envoy.Config.Trace.V3.OpenTelemetryConfig config, string path, Func<string, string?> environment, Logger log, ConfigErrors errors)
    {
        var resource = new OtelResource();
        resource.Set("service.name", config.ServiceName.Length > 0 ? config.ServiceName : "unknown_service:envoy");
        for (var i = 0; i < config.ResourceDetectors.Count; i++)
        {
            var detector = config.ResourceDetectors[i];
            var detectorPath = FieldPath.Index(FieldPath.Field(path, "resource_detectors"), i);
            if (detector.TypedConfig is { } any && any.Is(EnvironmentResourceDetectorConfig.Descriptor))
            {
                resource.DetectEnvironment(environment(EnvironmentVariable), log);
            }
            else if (detector.TypedConfig is { } staticAny && staticAny.Is(StaticConfigResourceDetectorConfig.Descriptor))
            {
                foreach (var (key, value) in staticAny.Unpack<StaticConfigResourceDetectorConfig>().Attributes)
                {
                    // As Envoy: an empty value is skipped with a warning.
                    if (value.Length == 0)
                    {
                        log.Warn($"Attribute {key} cannot be empty.");
                        continue;
                    }

                    resource.Set(key, value);
                }
            }
            else if (detector.TypedConfig is { } dynatrace && dynatrace.Is(DynatraceResourceDetectorConfig.Descriptor))
            {
                resource.DetectDynatrace(log);
            }
            else
            {
                errors.Add(FieldPath.Field(detectorPath, "typed_config"), $"resource detector \"{detector.Name}\" is not supported yet");
            }
        }

        return resource;
    }

    /// <summary>
    /// Envoy's Dynatrace detector: reads every enrichment file (which exist depends on how Dynatrace is
    /// deployed, so a missing one is expected) and takes each <c>key=value</c> line (lines trimmed,
    /// empty ones skipped; a line that is not exactly one key and one value is skipped). A file that
    /// cannot be read warns; when no file gave anything, one warning says Dynatrace is not deployed.
    /// </summary>
    private void DetectDynatrace(Logger log)
    {
        var failures = 0;
        foreach (var file in DynatraceMetadataFiles)
        {
            string content;
            try
            {
                // The indirection file holds the real file's path, taken as written (as Envoy does).
                content = file.StartsWith("dt_metadata_", StringComparison.Ordinal) ? ReadEnrichmentFile(ReadEnrichmentFile(file)) : ReadEnrichmentFile(file);
            }
            catch (IOException ex)
            {
                failures++;
                log.Warn($"Failed to detect resource attributes from the Dynatrace enrichment file: {file}, error: {ex.Message}.");
                continue;
            }

            if (content.Length == 0)
            {
                failures++;
                continue;
            }

            foreach (var line in content.Split('\n'))
            {
                var trimmed = line.Trim(' ', '\t', '\r', '\f', '\v');
                if (trimmed.Length == 0)
                {
                    continue;
                }

                var keyValue = trimmed.Split('=');
                if (keyValue.Length == 2)
                {
                    Set(keyValue[0], keyValue[1]);
                }
            }
        }

        if (failures == DynatraceMetadataFiles.Length)
        {
            log.Warn("Dynatrace OpenTelemetry resource detector is configured but could not detect attributes. Check the Dynatrace deployment status to ensure it is correctly deployed.");
        }
    }

    /// <summary>The file's text; "" for an empty name; an <see cref="IOException"/> with Envoy's text when it cannot be read.</summary>
    private static string ReadEnrichmentFile(string path)
    {
        if (path.Length == 0)
        {
            return string.Empty;
        }

        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new IOException("Unable to read Dynatrace enrichment file: " + path, ex);
        }
    }

    /// <summary>
    /// Envoy's environment detector: <c>key=value</c> pairs separated by commas, taken as written (no
    /// trimming or percent-decoding); empty pieces are skipped and a piece that is not exactly one key
    /// and one value is skipped with a warning. An unset variable detects nothing and warns.
    /// </summary>
    private void DetectEnvironment(string? text, Logger log)
    {
        if (text is null)
        {
            log.Warn($"Failed to detect resource attributes from the environment: Environment variable doesn't exist: {EnvironmentVariable}.");
            return;
        }

        foreach (var pair in text.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var keyValue = pair.Split('=', StringSplitOptions.RemoveEmptyEntries);
            if (keyValue.Length != 2)
            {
                log.Warn($"Invalid resource format from the environment, invalid text: {pair}.");
                continue;
            }

            Set(keyValue[0], keyValue[1]);
        }
    }
}
