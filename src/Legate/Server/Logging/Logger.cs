namespace Legate.Server.Logging;

/// <summary>
/// One named logger (an Envoy "component": main, config, admin, upstream…). Check
/// <see cref="IsEnabled"/> before building an expensive message.
/// </summary>
internal sealed class Logger
{
    private readonly LogManager _manager;
    private volatile int _level;

    internal Logger(LogManager manager, string name, LogLevel level)
    {
        _manager = manager;
        Name = name;
        _level = (int)level;
    }

    public string Name { get; }

    public LogLevel Level
    {
        get => (LogLevel)_level;
        set => _level = (int)value;
    }

    public bool IsEnabled(LogLevel level) => level != LogLevel.Off && (int)level >= _level;

    public void Log(LogLevel level, string message)
    {
        if (IsEnabled(level))
        {
            _manager.Write(this, level, message);
        }
    }

    public void Trace(string message) => Log(LogLevel.Trace, message);

    public void Debug(string message) => Log(LogLevel.Debug, message);

    public void Info(string message) => Log(LogLevel.Info, message);

    public void Warn(string message) => Log(LogLevel.Warning, message);

    public void Error(string message) => Log(LogLevel.Error, message);

    public void Critical(string message) => Log(LogLevel.Critical, message);
}
