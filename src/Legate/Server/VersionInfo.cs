using System.Reflection;

namespace Legate.Server;

/// <summary>
/// The build's identity in Envoy's layout <c>revision/version/status/build type/TLS library</c>,
/// as printed by <c>--version</c> and reported in <c>/server_info</c>.
/// </summary>
internal static class VersionInfo
{
    /// <summary>The release version, e.g. <c>0.1.0</c>.</summary>
    public static string Version { get; } = typeof(VersionInfo).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>The source commit, when the SDK stamped it into the informational version ("0.1.0+sha").</summary>
    public static string Revision { get; } = ReadRevision();

    /// <summary>
    /// e.g. <c>3f2a…/0.1.0/Unknown/RELEASE/.NET-10.0.1</c>. Envoy's third field says whether the tree was
    /// clean; Legate's build does not record that, so it says Unknown rather than guess.
    /// </summary>
    public static string Full { get; } = $"{Revision}/{Version}/Unknown/{BuildType}/.NET-{Environment.Version}";

#if DEBUG
    private const string BuildType = "DEBUG";
#else
    private const string BuildType = "RELEASE";
#endif

    private static string ReadRevision()
    {
        var informational = typeof(VersionInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        var plus = informational?.IndexOf('+', StringComparison.Ordinal) ?? -1;
        return plus >= 0 ? informational![(plus + 1)..] : "unknown";
    }
}
