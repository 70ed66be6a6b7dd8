namespace Legate.Server.Logging;

/// <summary>Envoy's (spdlog's) log levels, least to most severe; <see cref="Off"/> disables a logger.</summary>
internal enum LogLevel
{
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warning = 3,
    Error = 4,
    Critical = 5,
    Off = 6,
}
