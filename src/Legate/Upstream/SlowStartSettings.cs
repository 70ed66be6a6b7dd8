namespace Legate.Upstream;

/// <summary>A compiled <c>slow_start_config</c>.</summary>
/// <param name="Window"><c>slow_start_window</c>.</param>
/// <param name="Aggression"><c>aggression.default_value</c> (default 1.0: linear); an invalid value falls back to 1.0, as Envoy.</param>
/// <param name="MinWeightFraction"><c>min_weight_percent</c> / 100 (default 10%).</param>
/// <param name="AggressionRuntimeKey"><c>aggression.runtime_key</c>: read from the live runtime each time a weight is computed.</param>
internal sealed record SlowStartSettings(TimeSpan Window, double Aggression = 1.0, double MinWeightFraction = 0.1, string? AggressionRuntimeKey = null);
