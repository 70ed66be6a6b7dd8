using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Server.Logging;

namespace Legate.Xds;

/// <summary>
/// One resource type from one source (Envoy's GrpcSubscription/watch): the names asked for
/// (wildcard for LDS/CDS), the accepted state (version, nonce, the resources with their
/// versions), and the handler that applies updates. The source (a gRPC stream or a watched file)
/// feeds it responses through <see cref="ProcessAsync"/>, which decodes and validates every
/// resource, applies what is valid (all or nothing in state of the world), and returns the errors
/// for the ACK/NACK. Updates of one subscription are processed one at a time.
/// </summary>
internal sealed class XdsSubscription
{
    private readonly Lock _namesLock = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _initialized = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly XdsResourceValidator _validator;
    private readonly TimeProvider _time;
    private readonly Logger _log;
    private volatile Dictionary<string, XdsResource> _resources = new(StringComparer.Ordinal);
    private ITimer? _initialFetchTimer;

    public XdsSubscription(XdsResourceType type, XdsSourceSpec source, IXdsUpdateHandler handler, XdsStats stats, XdsResourceValidator validator, TimeProvider time, Logger log)
    {
        Type = type;
        Source = source;
        Handler = handler;
        Stats = stats;
        _validator = validator;
        _time = time;
        _log = log;
    }

    public XdsResourceType Type { get; }

    public XdsSourceSpec Source { get; }

    public IXdsUpdateHandler Handler { get; }

    public XdsStats Stats { get; }

    /// <summary>The version_info of the last accepted state-of-the-world response ("" before any).</summary>
    public string AcceptedVersion { get; private set; } = string.Empty;

    /// <summary>The system_version_info of the last Delta response.</summary>
    public string SystemVersion { get; private set; } = string.Empty;

    /// <summary>The version of the type as a whole: version_info in state of the world, Delta's system_version_info (config_dump's version_info).</summary>
    public string VersionInfo => Source.IsDelta ? SystemVersion : AcceptedVersion;

    /// <summary>The nonce of the last response received (accepted or not).</summary>
    public string LastNonce { get; set; } = string.Empty;

    /// <summary>The accepted resources by name (immutable snapshot).</summary>
    public IReadOnlyDictionary<string, XdsResource> Resources => _resources;

    /// <summary>True once an update was accepted (a rejected first response ends init without one).</summary>
    public bool HasAccepted { get; private set; }

    /// <summary>The last rejected update, or null when the last update was accepted.</summary>
    public XdsErrorState? ErrorState { get; private set; }

    /// <summary>Completes on the first response (applied or rejected) or at initial_fetch_timeout.</summary>
    public Task Initialized => _initialized.Task;

    /// <summary>Raised when the subscribed names change (the source sends a new request).</summary>
    public event Action<XdsSubscription>? NamesChanged;

    /// <summary>Set by the source: the names subscribed or unsubscribed since the last request (Delta).</summary>
    internal HashSet<string> PendingSubscribe { get; } = new(StringComparer.Ordinal);

    internal HashSet<string> PendingUnsubscribe { get; } = new(StringComparer.Ordinal);

    /// <summary>The names asked for (empty for the wildcard types).</summary>
    public string[] Names()
    {
        lock (_namesLock)
        {
            return _names.Order(StringComparer.Ordinal).ToArray();
        }
    }

    /// <summary>Asks for one more resource (RDS/EDS); no-op when already asked.</summary>
    public void AddName(string name)
    {
        lock (_namesLock)
        {
            if (!_names.Add(name))
            {
                return;
            }

            PendingUnsubscribe.Remove(name);
            PendingSubscribe.Add(name);
        }

        NamesChanged?.Invoke(this);
    }

    public void RemoveName(string name)
    {
        lock (_namesLock)
        {
            if (!_names.Remove(name))
            {
                return;
            }

            PendingSubscribe.Remove(name);
            PendingUnsubscribe.Add(name);
        }

        NamesChanged?.Invoke(this);
    }

    /// <summary>Takes the pending subscribe/unsubscribe sets (for one Delta request).</summary>
    internal (string[] Subscribe, string[] Unsubscribe) TakePending()
    {
        lock (_namesLock)
        {
            var result = (PendingSubscribe.ToArray(), PendingUnsubscribe.ToArray());
            PendingSubscribe.Clear();
            PendingUnsubscribe.Clear();
            return result;
        }
    }

    /// <summary>Starts the initial_fetch_timeout clock (when the source starts).</summary>
    public void Start()
    {
        if (Source.InitialFetchTimeout > TimeSpan.Zero && !_initialized.Task.IsCompleted && _initialFetchTimer is null)
        {
            _initialFetchTimer = _time.CreateTimer(_ => InitialFetchTimedOut(), null, Source.InitialFetchTimeout, Timeout.InfiniteTimeSpan);
        }
    }

    public void Stop() => _initialFetchTimer?.Dispose();

    /// <summary>A stream or file failure (counted; the last accepted config stays).</summary>
    public void Failed() => Stats.UpdateFailure.Inc();

    /// <summary>
    /// Processes one response. <paramref name="added"/> are the resources as sent (with their
    /// per-resource version in Delta), <paramref name="removed"/> the names Delta removed.
    /// Returns the errors: empty means ACK. The resources' bytes are read only until the first
    /// await (what is kept is copied), so they may point into a receive buffer.
    /// </summary>
    public async ValueTask<IReadOnlyList<XdsResourceError>> ProcessAsync(
        IReadOnlyList<XdsWireResource> added,
        IReadOnlyList<string> removed,
        string version,
        bool stateOfWorld,
        CancellationToken cancellationToken)
    {
        Stats.UpdateAttempt.Inc();
        var now = _time.GetUtcNow();
        var errors = new List<XdsResourceError>();
        var warnings = new List<string>();
        var decoded = new List<XdsResource>(added.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var current = _resources;
        foreach (var (typeUrl, value, givenName, resourceVersion) in added)
        {
            if (typeUrl == Type.TypeUrl
                && (givenName ?? Type.NameIn(value.Span)) is { } hint
                && current.TryGetValue(hint, out var same)
                && same.Encoded is { } inForce
                && inForce.Span.SequenceEqual(value.Span)
                && seen.Add(same.Name))
            {
                // The very bytes in force (a state-of-the-world response repeats every resource):
                // neither copied, decoded nor validated again. At scale this is most of a response.
                // The name read from the bytes only finds the candidate; equal bytes prove it.
                Unchanged(same, same.Encoded);
                continue;
            }

            var encoded = ByteString.CopyFrom(value.Span);
            var message = _validator.Decode(Type, new Any { TypeUrl = typeUrl, Value = encoded }, out var decodeError);
            if (message is null)
            {
                errors.Add(new XdsResourceError(givenName ?? string.Empty, decodeError!));
                continue;
            }

            var name = Type.NameOf(message);
            if (!seen.Add(name))
            {
                errors.Add(new XdsResourceError(name, $"duplicate {Type.Descriptor.Name} '{name}' in one response"));
                continue;
            }

            var existing = current.GetValueOrDefault(name);
            if (existing is not null && existing.Message.Equals(message))
            {
                // Unchanged content in other bytes: no validation or rebuild; keep its last_updated.
                Unchanged(existing, encoded);
                continue;
            }

            // What the accepted version already had is not checked again (one endpoint of 10,000).
            var problems = _validator.Validate(Type, message, warnings, existing?.Message);
            if (problems.Count > 0)
            {
                errors.Add(new XdsResourceError(name, XdsResourceValidator.Describe(problems)));
                continue;
            }

            decoded.Add(new XdsResource(name, stateOfWorld ? version : resourceVersion, message, now, encoded));

            void Unchanged(XdsResource accepted, ByteString? bytes) =>
                decoded.Add(new XdsResource(accepted.Name, stateOfWorld ? version : resourceVersion, accepted.Message, accepted.LastUpdated, bytes, isUnchanged: true));
        }

        foreach (var warning in warnings.Distinct())
        {
            _log.Warn($"{Type.ShortName}: {warning}");
        }

        var removedNames = new List<string>();
        if (stateOfWorld)
        {
            if (Type.IsWildcard)
            {
                foreach (var name in current.Keys)
                {
                    if (!seen.Contains(name))
                    {
                        removedNames.Add(name);
                    }
                }
            }
        }
        else
        {
            foreach (var name in removed)
            {
                if (current.ContainsKey(name))
                {
                    removedNames.Add(name);
                }
            }
        }

        if (stateOfWorld && errors.Count > 0)
        {
            // One invalid resource rejects the whole state-of-the-world response.
            return Reject(errors, version, now);
        }

        var update = new XdsUpdate(decoded, removedNames, version, stateOfWorld);
        IReadOnlyList<XdsResourceError> applyErrors;
        try
        {
            applyErrors = await Handler.ApplyAsync(update, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            _log.Error($"{Type.ShortName}: applying an update failed: {ex}");
            applyErrors = [new XdsResourceError(string.Empty, "internal error applying the update: " + ex.Message)];
        }

        if (stateOfWorld && applyErrors.Count > 0)
        {
            return Reject(applyErrors, version, now);
        }

        errors.AddRange(applyErrors);
        var rejected = new HashSet<string>(applyErrors.Select(e => e.Resource), StringComparer.Ordinal);
        var next = stateOfWorld ? new Dictionary<string, XdsResource>(StringComparer.Ordinal) : new Dictionary<string, XdsResource>(current, StringComparer.Ordinal);
        if (stateOfWorld && !Type.IsWildcard)
        {
            // Named resources absent from the response stay as they were.
            foreach (var (name, resource) in current)
            {
                next[name] = resource;
            }
        }

        foreach (var resource in decoded)
        {
            if (!rejected.Contains(resource.Name))
            {
                next[resource.Name] = resource;
            }
        }

        foreach (var name in removedNames)
        {
            next.Remove(name);
        }

        _resources = next;
        if (stateOfWorld)
        {
            AcceptedVersion = version;
        }
        else
        {
            SystemVersion = version;
        }

        if (errors.Count > 0)
        {
            // Delta: the valid resources were applied; the NACK names the others.
            return Reject(errors, version, now);
        }

        ErrorState = null;
        HasAccepted = true;
        Stats.Accepted(version, now);
        if (decoded.Count == 0 && removedNames.Count == 0)
        {
            Stats.UpdateEmpty.Inc();
        }

        MarkInitialized();
        return errors;
    }

    /// <summary>A response that could not even be parsed (a bad file): rejected, the old config stays.</summary>
    public void RejectUnparsable(string details)
    {
        Stats.UpdateAttempt.Inc();
        Reject([new XdsResourceError(string.Empty, details)], string.Empty, _time.GetUtcNow());
    }

    private IReadOnlyList<XdsResourceError> Reject(IReadOnlyList<XdsResourceError> errors, string version, DateTimeOffset now)
    {
        Stats.UpdateRejected.Inc();
        ErrorState = new XdsErrorState(string.Join("; ", errors), now, version);
        _log.Warn($"{Type.ShortName}: rejected update (version '{version}'): {ErrorState.Details}");
        // A rejected first response still ends the wait: Envoy's init does not hang on a bad config.
        MarkInitialized();
        return errors;
    }

    private void MarkInitialized()
    {
        _initialFetchTimer?.Dispose();
        _initialized.TrySetResult();
    }

    private void InitialFetchTimedOut()
    {
        if (_initialized.Task.IsCompleted)
        {
            return;
        }

        Stats.InitFetchTimeout.Inc();
        _log.Warn($"{Type.ShortName}: initial fetch timed out after {Source.InitialFetchTimeout.TotalSeconds:0.###}s; continuing without it");
        Handler.OnInitialFetchTimeout();
        _initialized.TrySetResult();
    }
}
