using System.Security.Cryptography;
using Envoy.Config.Core.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Legate.Config;

namespace Legate.Tls;

/// <summary>
/// Watches the files a secret names (its <c>filename</c> data sources, and any <c>watched_directory</c>
/// in it) and calls back, debounced, when one of their directories changes: a rotation is usually
/// several events (write, rename into place). Used for secrets that arrive over xDS SDS, whose
/// certificate and key may live in files rotated on disk, as Envoy re-reads them.
/// </summary>
internal sealed class SecretFileWatch : IDisposable
{
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly Timer _debounce;

    private SecretFileWatch(IEnumerable<string> directories, Action changed)
    {
        _debounce = new Timer(static state => ((Action)state!)(), changed, Timeout.Infinite, Timeout.Infinite);
        foreach (var directory in directories)
        {
            if (!Directory.Exists(directory))
            {
                continue;
            }

            var watcher = new FileSystemWatcher(directory)
            {
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.DirectoryName,
                IncludeSubdirectories = false,
            };
            watcher.Changed += OnChanged;
            watcher.Created += OnChanged;
            watcher.Renamed += OnChanged;
            watcher.Deleted += OnChanged;
            watcher.EnableRaisingEvents = true;
            _watchers.Add(watcher);
        }
    }

    /// <summary>The directories watched, sorted (a new secret with the same set keeps its watch).</summary>
    public IReadOnlyList<string> Directories { get; private init; } = [];

    /// <summary>The files <paramref name="secret"/> reads and the directories to watch for them (null when it names none).</summary>
    public static (List<string> Files, List<string> Directories)? FilesOf(Secret secret)
    {
        var files = new List<string>();
        var directories = new SortedSet<string>(StringComparer.Ordinal);
        MessageWalker.ForEach(secret, string.Empty, (message, _) =>
        {
            if (message is DataSource { SpecifierCase: DataSource.SpecifierOneofCase.Filename } source)
            {
                var full = Path.GetFullPath(source.Filename);
                files.Add(full);
                if (Path.GetDirectoryName(full) is { } directory)
                {
                    directories.Add(directory);
                }
            }
            else if (message is WatchedDirectory { Path.Length: > 0 } watched)
            {
                directories.Add(Path.GetFullPath(watched.Path));
            }
        });
        return files.Count == 0 && directories.Count == 0 ? null : (files, [.. directories]);
    }

    /// <summary>SHA-256 over the files' bytes, in order; null when one cannot be read (mid-rotation).</summary>
    public static string? HashOf(List<string> files)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in files)
        {
            try
            {
                hash.AppendData(File.ReadAllBytes(file));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }

    /// <summary>Starts watching <paramref name="directories"/>; <paramref name="changed"/> runs on a timer thread.</summary>
    public static SecretFileWatch Start(List<string> directories, Action changed) => new(directories, changed) { Directories = directories };

    public void Dispose()
    {
        foreach (var watcher in _watchers)
        {
            watcher.Dispose();
        }

        _debounce.Dispose();
    }

    private void OnChanged(object sender, FileSystemEventArgs e)
    {
        try
        {
            _debounce.Change(50, Timeout.Infinite);
        }
        catch (ObjectDisposedException)
        {
            // Stopped watching meanwhile.
        }
    }
}
