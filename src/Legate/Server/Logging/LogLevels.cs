namespace Legate.Server.Logging;

/// <summary>Names of <see cref="LogLevel"/> as Envoy spells them on the command line and in log lines.</summary>
internal static class LogLevels
{
    /// <summary>The names accepted by <c>--log-level</c>, in the order Envoy lists them.</summary>
    public const string AcceptedNames = "trace, debug, info, warning, warn, error, critical, off";

    // spdlog's level names, which Envoy prints in the %l field.
    private static readonly string[] s_names = ["trace", "debug", "info", "warning", "error", "critical", "off"];
    private static readonly string[] s_shortNames = ["T", "D", "I", "W", "E", "C", "O"];

    public static string Name(LogLevel level) => s_names[(int)level];

    public static string ShortName(LogLevel level) => s_shortNames[(int)level];

    /// <summary>Parses a level name; Envoy accepts both <c>warning</c> and <c>warn</c>.</summary>
    public static bool TryParse(string text, out LogLevel level)
    {
        switch (text)
        {
            case "trace": level = LogLevel.Trace; return true;
            case "debug": level = LogLevel.Debug; return true;
            case "info": level = LogLevel.Info; return true;
            case "warning":
            case "warn": level = LogLevel.Warning; return true;
            case "error": level = LogLevel.Error; return true;
            case "critical": level = LogLevel.Critical; return true;
            case "off": level = LogLevel.Off; return true;
            default: level = LogLevel.Info; return false;
        }
    }
}
