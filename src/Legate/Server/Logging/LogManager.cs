using System.Collections.Concurrent;

namespace Legate.Server.Logging;

/// <summary>
/// Owns the loggers of one server: their levels (<c>--log-level</c>, <c>--component-log-level</c>),
/// the line layout (<c>--log-format</c>) and the sink (stderr or <c>--log-path</c>). An instance
/// rather than a global so that several servers can run side by side in one test process.
/// </summary>
internal sealed class LogManager : IDisposable
{
    private readonly ConcurrentDictionary<string, Logger> _loggers = new(StringComparer.Ordinal);
    private readonly IReadOnlyDictionary<string, LogLevel> _componentLevels;
    private readonly ILogSink _sink;
    private readonly TimeProvider _time;

    public LogManager(
        ILogSink sink,
        LogFormatter formatter,
        LogLevel defaultLevel,
        IReadOnlyDictionary<string, LogLevel>? componentLevels = null,
        TimeProvider? time = null)
    {
        _sink = sink;
        Formatter = formatter;
        DefaultLevel = defaultLevel;
        _componentLevels = componentLevels ?? new Dictionary<string, LogLevel>();
        _time = time ?? TimeProvider.System;
    }

    public LogFormatter Formatter { get; }

    public LogLevel DefaultLevel { get; }

    /// <summary>Builds the log manager the command line asks for; the caller owns the result.</summary>
    public static LogManager Create(CommandLineOptions options, TextWriter stderr)
    {
        ILogSink sink = options.LogPath is { } path
            ? TextWriterLogSink.OpenFile(path)
            : new TextWriterLogSink(stderr, ownsWriter: false);
        return Create(options, sink);
    }

    /// <summary>Builds a log manager with the command line's levels and format, writing to <paramref name="sink"/>.</summary>
    public static LogManager Create(CommandLineOptions options, ILogSink sink)
    {
        var levels = new Dictionary<string, LogLevel>(StringComparer.Ordinal);
        foreach (var (component, level) in options.ComponentLogLevels)
        {
            levels[component] = level;
        }

        return new LogManager(sink, new LogFormatter(options.LogFormat), options.LogLevel, levels);
    }

    /// <summary>The logger for a component; the same instance for the same name.</summary>
    public Logger Get(string component) =>
        _loggers.GetOrAdd(component, static (name, self) => new Logger(self, name, self._componentLevels.GetValueOrDefault(name, self.DefaultLevel)), this);

    public void Flush() => _sink.Flush();

    public void Dispose() => _sink.Dispose();

    internal void Write(Logger logger, LogLevel level, string message)
    {
        var line = Formatter.Format(_time.GetLocalNow(), Environment.CurrentManagedThreadId, level, logger.Name, message);
        try
        {
            _sink.WriteLine(line);
        }
        catch (ObjectDisposedException)
        {
            // A late line from a connection closing after shutdown: nowhere left to write it.
        }
        catch (IOException)
        {
            // stderr closed or disk full: logging must never take the proxy down.
        }
    }
}
