using System.Security.Cryptography;
using Envoy.Config.Core.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Legate.Config;
using Legate.Server.Logging;
using Legate.Stats;
using DiscoveryResponse = Envoy.Service.Discovery.V3.DiscoveryResponse;

namespace Legate.Tls;

/// <summary>
/// Secrets by name (Envoy's SecretManager): <c>static_resources.secrets</c> referenced by an
/// <c>SdsSecretConfig</c> without <c>sds_config</c>, and file-based SDS (<c>sds_config</c> with
/// <c>path_config_source</c> or the older <c>path</c>). A file subscription reads the file (a
/// DiscoveryResponse in YAML or JSON) at load, then watches its directory, the
/// <c>watched_directory</c> when given, and the directories of the files the secret names:
/// when any changes (atomic replace by rename included), the secret is read again and, if it
/// compiles, swapped in; a bad update is logged, counted in <c>sds.&lt;name&gt;.update_rejected</c>
/// and the previous value stays. An xDS <c>sds_config</c> (<c>ads</c>, <c>api_config_source</c>)
/// subscribes the name through the <see cref="ISdsSource"/> (the xDS manager): the provider starts
/// empty and its TLS contexts warm until the secret arrives; each accepted Secret replaces it.
/// </summary>
internal sealed class SecretManager : IDisposable
{
    private readonly Dictionary<string, Secret> _static = new(StringComparer.Ordinal);
    private readonly Dictionary<string, object> _subscriptions = new(StringComparer.Ordinal);
    private readonly List<IDisposable> _watches = [];
    private readonly Logger? _log;
    private readonly StatsStore? _stats;
    private readonly List<Func<IEnumerable<CertificateEntry>>> _certificateSources = [];
    private readonly ISdsSource? _sds;

    public SecretManager(IEnumerable<Secret>? staticSecrets, string path, ConfigErrors errors, Logger? log = null, StatsStore? stats = null, ISdsSource? sds = null)
    {
        _log = log;
        _stats = stats;
        _sds = sds;
        var i = 0;
        foreach (var secret in staticSecrets ?? [])
        {
            if (!_static.TryAdd(secret.Name, secret))
            {
                errors.Add(FieldPath.Field(FieldPath.Index(path, i), "name"), $"duplicate secret name '{secret.Name}'");
            }

            i++;
        }
    }

    /// <summary>An empty manager (tests, configs without TLS).</summary>
    public static SecretManager Empty { get; } = new([], string.Empty, new ConfigErrors());

    /// <summary>A certificate and where it is used, for /certs.</summary>
    public readonly record struct CertificateEntry(string Kind, TlsCertificate? Certificate, CertificateValidator? Validator);

    /// <summary>Registers a source of certificates in use (a TLS context) for /certs and the expiry gauge.</summary>
    public void RegisterCertificates(Func<IEnumerable<CertificateEntry>> source)
    {
        lock (_certificateSources)
        {
            _certificateSources.Add(source);
        }
    }

    /// <summary>A TLS context is gone (its listener or cluster was replaced or removed): /certs stops listing it.</summary>
    public void UnregisterCertificates(Func<IEnumerable<CertificateEntry>> source)
    {
        lock (_certificateSources)
        {
            _certificateSources.Remove(source);
        }
    }

    /// <summary>Every certificate in use, by TLS context.</summary>
    public List<CertificateEntry[]> CertificatesInUse()
    {
        lock (_certificateSources)
        {
            var all = new List<CertificateEntry[]>(_certificateSources.Count);
            foreach (var source in _certificateSources)
            {
                all.Add([.. source()]);
            }

            return all;
        }
    }

    public SecretProvider<TlsCertificate>? TlsCertificate(SdsSecretConfig config, string path, ConfigErrors errors) =>
        Resolve(config, path, errors, Secret.TypeOneofCase.TlsCertificate, "tls_certificate",
            (secret, p) => Tls.TlsCertificate.LoadOrThrow(secret.TlsCertificate, FieldPath.Field(p, "tls_certificate")));

    public SecretProvider<CertificateValidator>? ValidationContext(SdsSecretConfig config, string path, ConfigErrors errors) =>
        Resolve(config, path, errors, Secret.TypeOneofCase.ValidationContext, "validation_context",
            (secret, p) => CertificateValidator.CompileOrThrow(secret.ValidationContext, FieldPath.Field(p, "validation_context")));

    public SecretProvider<SessionTicketKeys>? SessionTicketKeys(SdsSecretConfig config, string path, ConfigErrors errors) =>
        Resolve(config, path, errors, Secret.TypeOneofCase.SessionTicketKeys, "session_ticket_keys",
            (secret, p) => Tls.SessionTicketKeys.CompileOrThrow(secret.SessionTicketKeys, FieldPath.Field(p, "session_ticket_keys")));

    public void Dispose()
    {
        foreach (var watch in _watches)
        {
            watch.Dispose();
        }
    }

    private SecretProvider<T>? Resolve<T>(SdsSecretConfig config, string path, ConfigErrors errors, Secret.TypeOneofCase type, string typeName, Func<Secret, string, T> compile)
        where T : class
    {
        if (config.SdsConfig is null)
        {
            if (!_static.TryGetValue(config.Name, out var secret))
            {
                errors.Add(FieldPath.Field(path, "name"), $"Unknown static secret: {config.Name}");
                return null;
            }

            if (secret.TypeCase != type)
            {
                errors.Add(FieldPath.Field(path, "name"), $"static secret '{config.Name}' is not a {typeName}");
                return null;
            }

            var key = "static/" + config.Name;
            lock (_subscriptions)
            {
                if (_subscriptions.TryGetValue(key, out var existing) && existing is SecretProvider<T> shared)
                {
                    return shared;
                }
            }

            try
            {
                var provider = new SecretProvider<T>(config.Name, compile(secret, "static_resources.secrets[" + config.Name + "]"));
                lock (_subscriptions)
                {
                    _subscriptions[key] = provider;
                }

                return provider;
            }
            catch (ConfigException ex)
            {
                foreach (var error in ex.Errors)
                {
                    errors.Add(path, $"secret '{config.Name}': {error.Path}: {error.Message}");
                }

                return null;
            }
        }

        var source = config.SdsConfig;
        if (source.ConfigSourceSpecifierCase is ConfigSource.ConfigSourceSpecifierOneofCase.Ads or ConfigSource.ConfigSourceSpecifierOneofCase.ApiConfigSource)
        {
            return SubscribeXds(config, path, errors, type, typeName, compile);
        }

        string? file = source.ConfigSourceSpecifierCase switch
        {
            ConfigSource.ConfigSourceSpecifierOneofCase.PathConfigSource => source.PathConfigSource.Path,
#pragma warning disable CS0612
            ConfigSource.ConfigSourceSpecifierOneofCase.Path => source.Path,
#pragma warning restore CS0612
            _ => null,
        };
        if (file is null)
        {
            errors.Add(FieldPath.Field(path, "sds_config"), $"{source.ConfigSourceSpecifierCase} config sources are not supported for SDS; use ads, api_config_source, path_config_source or static_resources.secrets");
            return null;
        }

        var watched = source.PathConfigSource?.WatchedDirectory?.Path;
        var subscriptionKey = "file/" + file + "/" + config.Name;
        lock (_subscriptions)
        {
            if (_subscriptions.TryGetValue(subscriptionKey, out var existing) && existing is SecretProvider<T> shared)
            {
                return shared;
            }
        }

        try
        {
            var (initial, hash, files) = LoadFile(file, config.Name, type, typeName, compile);
            var provider = new SecretProvider<T>(config.Name, initial);
            var subscription = new FileSubscription<T>(this, provider, file, config.Name, type, typeName, compile, hash);
            subscription.Watch(watched, files);
            lock (_subscriptions)
            {
                _subscriptions[subscriptionKey] = provider;
                _watches.Add(subscription);
            }

            return provider;
        }
        catch (ConfigException ex)
        {
            foreach (var error in ex.Errors)
            {
                errors.Add(FieldPath.Field(path, "sds_config"), $"{file}: {(error.Path.Length > 0 ? error.Path + ": " : string.Empty)}{error.Message}");
            }

            return null;
        }
    }

    /// <summary>A secret from an xDS source: one provider per (name, type, source), empty until the secret arrives.</summary>
    private SecretProvider<T>? SubscribeXds<T>(SdsSecretConfig config, string path, ConfigErrors errors, Secret.TypeOneofCase type, string typeName, Func<Secret, string, T> compile)
        where T : class
    {
        if (_sds is null)
        {
            errors.Add(FieldPath.Field(path, "sds_config"), "SDS over xDS is not available here (no xDS client)");
            return null;
        }

        var key = "xds/" + typeName + "/" + config.Name + "/" + config.SdsConfig;
        lock (_subscriptions)
        {
            if (_subscriptions.TryGetValue(key, out var existing) && existing is SecretProvider<T> shared)
            {
                shared.References++;
                Legate.Xds.SubscriptionHolds.Record(shared.Release);
                return shared;
            }
        }

        var provider = new SecretProvider<T>(config.Name);
        var subscriber = new XdsSubscriber<T>(this, provider, type, typeName, compile);
        if (_sds.Subscribe(config.SdsConfig, FieldPath.Field(path, "sds_config"), subscriber, errors) is not { } unsubscribeSds)
        {
            return null;
        }

        // Unsubscribing also stops watching the secret's files.
        Action unsubscribe = () =>
        {
            unsubscribeSds();
            subscriber.Dispose();
            lock (_subscriptions)
            {
                _watches.Remove(subscriber);
            }
        };
        lock (_subscriptions)
        {
            _watches.Add(subscriber);
        }

        lock (_subscriptions)
        {
            if (_subscriptions.TryGetValue(key, out var raced) && raced is SecretProvider<T> first)
            {
                first.References++;
                Legate.Xds.SubscriptionHolds.Record(first.Release);
                unsubscribe();
                return first;
            }

            _subscriptions[key] = provider;
            provider.References = 1;
            provider.OnRelease = () => ReleaseXds(key, provider, unsubscribe);
        }

        // A listener or cluster that fails to compile after this gives the reference back.
        Legate.Xds.SubscriptionHolds.Record(provider.Release);
        return provider;
    }

    /// <summary>One TLS context less uses an xDS secret: the last one takes its subscriber off the SDS subscription.</summary>
    private void ReleaseXds<T>(string key, SecretProvider<T> provider, Action unsubscribe)
        where T : class
    {
        lock (_subscriptions)
        {
            if (--provider.References > 0 || !_subscriptions.TryGetValue(key, out var current) || !ReferenceEquals(current, provider))
            {
                return;
            }

            _subscriptions.Remove(key);
        }

        provider.EndWarming();
        unsubscribe();
    }

    private static (T Value, string Hash, List<string> Files) LoadFile<T>(string file, string name, Secret.TypeOneofCase type, string typeName, Func<Secret, string, T> compile)
    {
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException(string.Empty, $"cannot read the SDS file: {ex.Message}");
        }

        var errors = new ConfigErrors();
        DiscoveryResponse response;
        try
        {
            response = new ProtoConverter(errors).Convert<DiscoveryResponse>(ConfigDocument.Parse(text, ConfigDocument.FormatOf(file)));
        }
        catch (ConfigException ex)
        {
            throw new ConfigException(ex.Errors);
        }

        errors.ThrowIfAny();
        Secret? found = null;
        foreach (var resource in response.Resources)
        {
            if (!resource.Is(Secret.Descriptor))
            {
                throw new ConfigException("resources", $"unexpected resource type {resource.TypeUrl} in an SDS file");
            }

            var secret = resource.Unpack<Secret>();
            if (secret.Name == name)
            {
                found = secret;
            }
        }

        if (found is null)
        {
            throw new ConfigException("resources", $"no secret named '{name}' in the SDS file");
        }

        if (found.TypeCase != type)
        {
            throw new ConfigException("resources", $"secret '{name}' is not a {typeName}");
        }

        // The hash covers the secret and the files it names, so a rotated key file counts as a change.
        var files = new List<string>();
        MessageWalker.ForEach(found, string.Empty, (message, _) =>
        {
            if (message is DataSource { SpecifierCase: DataSource.SpecifierOneofCase.Filename } ds)
            {
                files.Add(ds.Filename);
            }
        });
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Google.Protobuf.MessageExtensions.ToByteArray(found));
        foreach (var f in files)
        {
            try
            {
                hash.AppendData(File.ReadAllBytes(f));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new ConfigException(string.Empty, $"cannot read {f}: {ex.Message}");
            }
        }

        var value = compile(found, "resources[" + name + "]");
        return (value, Convert.ToHexString(hash.GetHashAndReset()), files);
    }

    /// <summary>One watched SDS file: re-reads it when its directory (or a named file's) changes.</summary>
    private sealed class FileSubscription<T> : IDisposable
        where T : class
    {
        private readonly SecretManager _owner;
        private readonly SecretProvider<T> _provider;
        private readonly string _file;
        private readonly string _name;
        private readonly Secret.TypeOneofCase _type;
        private readonly string _typeName;
        private readonly Func<Secret, string, T> _compile;
        private readonly List<FileSystemWatcher> _watchers = [];
        private readonly Lock _gate = new();
        private readonly Timer _debounce;
        private readonly Counter? _updateSuccess;
        private readonly Counter? _updateRejected;
        private string _hash;
        private bool _disposed;

        public FileSubscription(SecretManager owner, SecretProvider<T> provider, string file, string name, Secret.TypeOneofCase type, string typeName, Func<Secret, string, T> compile, string hash)
        {
            _owner = owner;
            _provider = provider;
            _file = Path.GetFullPath(file);
            _name = name;
            _type = type;
            _typeName = typeName;
            _compile = compile;
            _hash = hash;
            _debounce = new Timer(static s => ((FileSubscription<T>)s!).Reload(), this, Timeout.Infinite, Timeout.Infinite);
            _updateSuccess = owner._stats?.Counter("sds." + name + ".update_success");
            _updateRejected = owner._stats?.Counter("sds." + name + ".update_rejected");
        }

        public void Watch(string? watchedDirectory, List<string> files)
        {
            var directories = new HashSet<string>(StringComparer.Ordinal) { Path.GetDirectoryName(_file)! };
            if (!string.IsNullOrEmpty(watchedDirectory))
            {
                directories.Add(Path.GetFullPath(watchedDirectory));
            }

            foreach (var f in files)
            {
                if (Path.GetDirectoryName(Path.GetFullPath(f)) is { } dir)
                {
                    directories.Add(dir);
                }
            }

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

        public void Dispose()
        {
            lock (_gate)
            {
                _disposed = true;
            }

            foreach (var watcher in _watchers)
            {
                watcher.Dispose();
            }

            _debounce.Dispose();
        }

        // A rotation is usually several events (write, rename); wait for them to settle, then read once.
        private void OnChanged(object sender, FileSystemEventArgs e) => _debounce.Change(50, Timeout.Infinite);

        private void Reload()
        {
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }

                try
                {
                    var (value, hash, _) = LoadFile(_file, _name, _type, _typeName, _compile);
                    if (hash == _hash)
                    {
                        return;
                    }

                    _hash = hash;
                    _provider.Update(value);
                    _updateSuccess?.Inc();
                    _owner._log?.Info($"secret '{_name}' updated from {_file}");
                }
                catch (ConfigException ex)
                {
                    // A half-written or broken update keeps the previous secret (Envoy rejects the update).
                    _updateRejected?.Inc();
                    _owner._log?.Warn($"secret '{_name}': rejected an update from {_file}: {ex.Message}");
                }
            }
        }
    }

    /// <summary>
    /// Feeds one provider from the xDS manager's SDS subscription. A secret that names files
    /// (<c>filename</c> data sources, <c>watched_directory</c>) has them watched while it is in force: when
    /// their bytes change it is compiled again from them and swapped in, as Envoy re-reads rotated files; a
    /// rotation that does not compile keeps the previous value and counts <c>sds.&lt;name&gt;.key_rotation_failed</c>.
    /// </summary>
    private sealed class XdsSubscriber<T>(SecretManager owner, SecretProvider<T> provider, Secret.TypeOneofCase type, string typeName, Func<Secret, string, T> compile) : ISdsSecretSubscriber, IDisposable
        where T : class
    {
        private readonly Lock _gate = new();
        private Secret? _compiled;
        private Secret? _current;
        private List<string>? _files;
        private string? _filesHash;
        private SecretFileWatch? _watch;
        private bool _disposed;

        public string Name => provider.Name;

        public object Compile(Secret secret)
        {
            if (secret.TypeCase != type)
            {
                throw new ConfigException(string.Empty, $"secret '{secret.Name}' is used as a {typeName} but holds {(secret.TypeCase == Secret.TypeOneofCase.None ? "nothing" : "a " + ToFieldName(secret.TypeCase))}");
            }

            var value = compile(secret, string.Empty);
            lock (_gate)
            {
                _compiled = secret;
            }

            return value;
        }

        public void Apply(object compiled)
        {
            provider.Update((T)compiled);
            owner._log?.Info($"secret '{provider.Name}' ({typeName}) updated by SDS");
            lock (_gate)
            {
                _current = _compiled;
                _compiled = null;
                WatchFilesLocked();
            }
        }

        public void EndWarming() => provider.EndWarming();

        public void Dispose()
        {
            lock (_gate)
            {
                _disposed = true;
                _watch?.Dispose();
                _watch = null;
            }
        }

        /// <summary>Watches the files of the secret in force (keeping the watch when the directories are the same).</summary>
        private void WatchFilesLocked()
        {
            var files = _current is null || _disposed ? null : SecretFileWatch.FilesOf(_current);
            _files = files?.Files;
            _filesHash = files is null ? null : SecretFileWatch.HashOf(files.Value.Files);
            if (_watch is not null && files is not null && _watch.Directories.SequenceEqual(files.Value.Directories))
            {
                return;
            }

            _watch?.Dispose();
            _watch = files is null ? null : SecretFileWatch.Start(files.Value.Directories, OnFilesChanged);
        }

        private void OnFilesChanged()
        {
            lock (_gate)
            {
                if (_disposed || _current is not { } secret || _files is not { } files || SecretFileWatch.HashOf(files) is not { } hash || hash == _filesHash)
                {
                    return;
                }

                T value;
                try
                {
                    value = compile(secret, string.Empty);
                }
                catch (ConfigException ex)
                {
                    // Half-written or mismatched files: the previous value stays until the files settle.
                    owner._stats?.Counter("sds." + provider.Name + ".key_rotation_failed").Inc();
                    owner._log?.Warn($"secret '{provider.Name}': its files changed but do not load: {ex.Message}");
                    return;
                }

                _filesHash = hash;
                provider.Update(value);
                owner._log?.Info($"secret '{provider.Name}' ({typeName}) reloaded from its files");
            }
        }

        private static string ToFieldName(Secret.TypeOneofCase value) => value switch
        {
            Secret.TypeOneofCase.TlsCertificate => "tls_certificate",
            Secret.TypeOneofCase.ValidationContext => "validation_context",
            Secret.TypeOneofCase.SessionTicketKeys => "session_ticket_keys",
            Secret.TypeOneofCase.GenericSecret => "generic_secret",
            _ => value.ToString(),
        };
    }
}
