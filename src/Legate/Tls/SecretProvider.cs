namespace Legate.Tls;

/// <summary>
/// The current value of a secret: fixed for inline and static secrets, replaced atomically by
/// SDS (files or xDS) on rotation. Handshakes read <see cref="Current"/> when they start, so a new
/// certificate or CA applies to new connections while established ones keep theirs. A secret
/// from an xDS source starts without a value: its TLS contexts warm on <see cref="Ready"/>, which
/// completes at the first value or when the source's initial_fetch_timeout gives up on it (then
/// handshakes fail with "secrets not ready" until a value arrives, as Envoy's).
/// </summary>
internal sealed class SecretProvider<T>
    where T : class
{
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private T? _current;

    public SecretProvider(string name, T initial)
    {
        Name = name;
        _current = initial;
        _ready.TrySetResult();
    }

    /// <summary>A secret whose value has not arrived yet (SDS over xDS).</summary>
    public SecretProvider(string name)
    {
        Name = name;
    }

    /// <summary>The secret's name (or "" for an inline value).</summary>
    public string Name { get; }

    /// <summary>The value in force; null until an SDS secret first arrives.</summary>
    public T? Current => Volatile.Read(ref _current);

    /// <summary>Completes at the first value, or when the source stops waiting for it (initial_fetch_timeout).</summary>
    public Task Ready => _ready.Task;

    /// <summary>Raised after <see cref="Current"/> changed.</summary>
    public event Action? Updated;

    public void Update(T value)
    {
        Volatile.Write(ref _current, value);
        _ready.TrySetResult();
        Updated?.Invoke();
    }

    /// <summary>The source gave up waiting for the first value: whoever warms on it goes on without it.</summary>
    public void EndWarming() => _ready.TrySetResult();

    /// <summary>How many TLS contexts share this provider (xDS secrets only); guarded by the secret manager.</summary>
    internal int References { get; set; }

    /// <summary>Set by the secret manager for xDS secrets: what <see cref="Release"/> does.</summary>
    internal Action? OnRelease { get; set; }

    /// <summary>
    /// A TLS context that used this secret is gone. For an xDS secret the last release ends the SDS
    /// subscription to its name; inline, static and file secrets ignore it.
    /// </summary>
    public void Release() => OnRelease?.Invoke();
}
