namespace Legate.Config;

/// <summary>A configuration was rejected. <see cref="Errors"/> lists every problem found.</summary>
internal sealed class ConfigException : Exception
{
    public ConfigException(IReadOnlyList<ConfigError> errors)
        : base(errors.Count == 1 ? errors[0].ToString() : $"{errors.Count} configuration errors:\n" + string.Join("\n", errors))
    {
        Errors = errors;
    }

    public ConfigException(string path, string message)
        : this(new[] { new ConfigError(path, message) })
    {
    }

    public IReadOnlyList<ConfigError> Errors { get; }
}
