namespace Legate.Tests.Harness;

/// <summary>Finds the repository checkout and the optional ../shared folder beside it.</summary>
internal static class Repository
{
    private static readonly Lazy<string> s_root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Legate.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Legate.slnx above {AppContext.BaseDirectory}");
    });

    public static string Root => s_root.Value;

    /// <summary>Envoy's sandbox configs, present on project machines and CI, absent on a user's clone.</summary>
    public static string EnvoyExamples => Path.GetFullPath(Path.Combine(Root, "..", "shared", "compat", "envoy-examples"));

    public static bool HasEnvoyExamples => File.Exists(Path.Combine(EnvoyExamples, "bootstraps.txt"));
}
