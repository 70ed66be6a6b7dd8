namespace Legate.Config;

/// <summary>
/// Collects every error and warning found while loading a configuration, so that
/// <c>--mode validate</c> can report all of them at once instead of stopping at the first.
/// Positions are filled in from the <see cref="SourceMap"/> of the document being checked.
/// </summary>
internal sealed class ConfigErrors
{
    private readonly List<ConfigError> _errors = new();
    private readonly List<ConfigError> _warnings = new();
    private readonly HashSet<string> _warningKeys = new(StringComparer.Ordinal);

    public ConfigErrors(SourceMap? sourceMap = null) => SourceMap = sourceMap ?? new SourceMap();

    public SourceMap SourceMap { get; set; }

    public IReadOnlyList<ConfigError> Errors => _errors;

    public IReadOnlyList<ConfigError> Warnings => _warnings;

    public bool HasErrors => _errors.Count > 0;

    public void Add(string path, string message) => _errors.Add(new ConfigError(path, message, SourceMap.Find(path)));

    /// <summary>Adds every error of a compile step that threw (each placed by its own path).</summary>
    public void AddFrom(ConfigException exception)
    {
        foreach (var error in exception.Errors)
        {
            Add(error.Path, error.Message);
        }
    }

    public void Add(string path, string message, SourcePosition? position) =>
        _errors.Add(new ConfigError(path, message, position ?? SourceMap.Find(path)));

    /// <summary>Adds a warning once per (path, message) pair.</summary>
    public void Warn(string path, string message)
    {
        if (_warningKeys.Add(path + "\0" + message))
        {
            _warnings.Add(new ConfigError(path, message, SourceMap.Find(path)));
        }
    }

    /// <summary>Throws a <see cref="ConfigException"/> holding every error, if there is any.</summary>
    public void ThrowIfAny()
    {
        if (HasErrors)
        {
            throw new ConfigException(_errors.ToArray());
        }
    }
}
