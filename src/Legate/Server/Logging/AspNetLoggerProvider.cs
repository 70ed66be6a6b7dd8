using MsLogging = Microsoft.Extensions.Logging;

namespace Legate.Server.Logging;

/// <summary>
/// Routes Kestrel's own log messages into one of our components, so that one <c>--log-level</c>
/// controls everything and every line has Envoy's layout. Kestrel's Information messages
/// ("Now listening on…", connection chatter) become debug: at info level an operator should see
/// Legate's lines, not the host's.
/// </summary>
internal sealed class AspNetLoggerProvider : MsLogging.ILoggerProvider
{
    private readonly Logger _logger;

    public AspNetLoggerProvider(Logger logger) => _logger = logger;

    public static MsLogging.ILoggerFactory CreateFactory(Logger logger) =>
        new MsLogging.LoggerFactory([new AspNetLoggerProvider(logger)]);

    public MsLogging.ILogger CreateLogger(string categoryName) => new Adapter(_logger);

    public void Dispose()
    {
    }

    private static LogLevel Map(MsLogging.LogLevel level) => level switch
    {
        MsLogging.LogLevel.Trace => LogLevel.Trace,
        MsLogging.LogLevel.Debug => LogLevel.Debug,
        MsLogging.LogLevel.Information => LogLevel.Debug,
        MsLogging.LogLevel.Warning => LogLevel.Warning,
        MsLogging.LogLevel.Error => LogLevel.Error,
        MsLogging.LogLevel.Critical => LogLevel.Critical,
        _ => LogLevel.Off,
    };

    private sealed class Adapter(Logger logger) : MsLogging.ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(MsLogging.LogLevel logLevel) => logger.IsEnabled(Map(logLevel));

        public void Log<TState>(MsLogging.LogLevel logLevel, MsLogging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var level = Map(logLevel);
            if (!logger.IsEnabled(level))
            {
                return;
            }

            var message = formatter(state, exception);
            logger.Log(level, exception is null ? message : message + ": " + exception.Message);
        }
    }
}
