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
    /// implemented detectors (environment, static_config); anything else is reported at
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
            else
            {
                errors.Add(FieldPath.Field(detectorPath, "typed_config"), $"resource detector \"{detector.Name}\" is not supported yet");
            }
        }

        return resource;
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
