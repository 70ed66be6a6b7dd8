namespace Legate.Runtime;

/// <summary>
/// A <c>disk_layer</c> (Envoy's filesystem runtime): every regular file under
/// <c>symlink_root/subdirectory</c> (then the node's cluster with <c>append_service_cluster</c>)
/// is a key — its path below that directory with '/' turned into '.' — whose value is the file's
/// text, lines starting with '#' dropped and trailing whitespace trimmed, as Envoy's. A directory
/// that does not exist (yet) gives an empty layer. Envoy reloads the layer when the symlink root is
/// swapped (the usual way to change it atomically: write a new tree, then move a new symlink over
/// the old one); so does <see cref="Watch"/>.
/// </summary>
internal sealed record DiskLayer(int Index, string SymlinkRoot, string Directory)
{
    // Envoy's MaxWalkDepth.
    private const int MaxDepth = 16;

    public Dictionary<string, string> Read()
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (System.IO.Directory.Exists(Directory))
        {
            Walk(Directory, string.Empty, 0, values);
        }

        return values;
    }

    private static void Walk(string directory, string prefix, int depth, Dictionary<string, string> values)
    {
        if (depth > MaxDepth)
        {
            return;
        }

        foreach (var entry in new DirectoryInfo(directory).EnumerateFileSystemInfos())
        {
            var key = prefix + entry.Name;
            if (entry is DirectoryInfo child)
            {
                Walk(child.FullName, key + ".", depth + 1, values);
            }
            else if (entry is FileInfo file)
            {
                var lines = File.ReadAllText(file.FullName).Split('\n').Where(line => !line.StartsWith('#'));
                values[key] = string.Join("\n", lines).TrimEnd();
            }
        }
    }

    /// <summary>
    /// Calls <paramref name="changed"/> whenever the symlink root is created, replaced, renamed over or
    /// removed (watched in its parent directory, as Envoy's). Null when that directory does not exist.
    /// </summary>
    public FileSystemWatcher? Watch(Action<DiskLayer> changed)
    {
        var parent = Path.GetDirectoryName(Path.GetFullPath(SymlinkRoot));
        if (parent is null || !System.IO.Directory.Exists(parent))
        {
            return null;
        }

        var watcher = new FileSystemWatcher(parent, Path.GetFileName(SymlinkRoot.TrimEnd('/')))
        {
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.CreationTime,
        };
        FileSystemEventHandler onChange = (_, _) => changed(this);
        watcher.Created += onChange;
        watcher.Changed += onChange;
        watcher.Deleted += onChange;
        watcher.Renamed += (_, _) => changed(this);
        watcher.EnableRaisingEvents = true;
        return watcher;
    }
}
