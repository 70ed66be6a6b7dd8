using Envoy.Service.Discovery.V3;
using Legate.Config;
using Legate.Server.Logging;
using Legate.Stats;

namespace Legate.Xds;

/// <summary>
/// A file-based config source (<c>path_config_source</c>, or the legacy <c>path</c>): the file holds
/// a DiscoveryResponse in YAML or JSON. It is read at start and again whenever it is replaced —
/// Envoy expects an atomic move into place (write elsewhere, rename over the file), which is what
/// is watched for; with <c>watched_directory</c>, any move into that directory triggers the reload.
/// Parsing ignores (and counts, in <c>server.dynamic_unknown_fields</c>) fields the schema does not
/// know; the resources then take the same path as gRPC ones. A file that cannot be read or parsed
/// keeps the old config and counts update_rejected (or update_failure when it cannot be read).
/// </summary>
internal sealed class XdsFileSource : IDisposable
{
    private readonly XdsSourceSpec _spec;
    private readonly XdsSubscription _subscription;
    private readonly Logger _log;
    private readonly Counter _unknownFields;
    private readonly SemaphoreSlim _reload = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stop = new();
    private FileSystemWatcher? _watcher;
    private Task? _loop;
    private string? _lastText;

    public XdsFileSource(XdsSourceSpec spec, XdsSubscription subscription, StatsStore stats, Logger log)
    {
        _spec = spec;
        _subscription = subscription;
        _log = log;
        _unknownFields = stats.Counter("server.dynamic_unknown_fields");
    }

    /// <summary>Reads the file once now, then watches for replacements.</summary>
    public void Start()
    {
        _subscription.Start();
        var directory = _spec.WatchedDirectory ?? Path.GetDirectoryName(Path.GetFullPath(_spec.Path));
        if (directory is not null && Directory.Exists(directory))
        {
            var fileName = Path.GetFileName(_spec.Path);
            _watcher = new FileSystemWatcher(directory) { IncludeSubdirectories = false, NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite };
            RenamedEventHandler renamed = (_, e) =>
            {
                if (_spec.WatchedDirectory is not null || string.Equals(e.Name, fileName, StringComparison.Ordinal))
                {
                    _reload.Release();
                }
            };
            FileSystemEventHandler changed = (_, e) =>
            {
                if (_spec.WatchedDirectory is not null || string.Equals(e.Name, fileName, StringComparison.Ordinal))
                {
                    _reload.Release();
                }
            };
            _watcher.Renamed += renamed;
            _watcher.Created += changed;
            _watcher.Changed += changed;
            _watcher.EnableRaisingEvents = true;
        }
        else
        {
            _log.Warn($"xDS file source '{_spec.Path}': directory '{directory}' does not exist; the file will not be watched");
        }

        _reload.Release();
        _loop = Task.Run(LoopAsync);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _watcher?.Dispose();
        _subscription.Stop();
    }

    private async Task LoopAsync()
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await _reload.WaitAsync(token).ConfigureAwait(false);
                // Events come in bursts (create + rename + change): take them as one reload.
                while (_reload.CurrentCount > 0)
                {
                    await _reload.WaitAsync(token).ConfigureAwait(false);
                }

                await ReloadAsync(token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex)
            {
                _log.Error($"xDS file source '{_spec.Path}': {ex}");
            }
        }
    }

    private async Task ReloadAsync(CancellationToken token)
    {
        string text;
        try
        {
            text = await File.ReadAllTextAsync(_spec.Path, token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _subscription.Stats.UpdateAttempt.Inc();
            _subscription.Failed();
            _log.Warn($"{_subscription.Type.ShortName}: cannot read '{_spec.Path}': {ex.Message}");
            return;
        }

        if (text == _lastText)
        {
            // Touched but not changed: nothing to do (Envoy compares the content hash too).
            return;
        }

        _lastText = text;
        var errors = new ConfigErrors();
        DiscoveryResponse? response = null;
        try
        {
            var node = ConfigDocument.Parse(text, ConfigDocument.FormatOf(_spec.Path));
            var options = new ConverterOptions { IgnoreUnknownFields = true, OnUnknownField = _ => _unknownFields.Inc() };
            response = new ProtoConverter(errors, options).Convert<DiscoveryResponse>(node);
        }
        catch (ConfigException ex)
        {
            foreach (var error in ex.Errors)
            {
                errors.Add(error.Path, error.Message, error.Position);
            }
        }

        if (response is null || errors.HasErrors)
        {
            var details = string.Join("; ", errors.Errors);
            _subscription.RejectUnparsable($"cannot parse '{_spec.Path}': {details}");
            return;
        }

        var resources = response.Resources.Select(any => XdsWireResource.Of(any, null, response.VersionInfo)).ToArray();
        var rejected = await _subscription.ProcessAsync(resources, [], response.VersionInfo, stateOfWorld: true, token).ConfigureAwait(false);
        if (rejected.Count == 0)
        {
            _log.Info($"{_subscription.Type.ShortName}: loaded '{_spec.Path}' (version '{response.VersionInfo}', {response.Resources.Count} resource(s))");
        }
    }
}
