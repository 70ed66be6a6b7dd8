namespace Legate.Tls;

/// <summary>
/// The current value of a secret: fixed for inline and static secrets, replaced atomically by
/// file-based SDS on rotation. Handshakes read <see cref="Current"/> when they start, so a new
/// certificate or CA applies to new connections while established ones keep theirs.
/// </summary>
internal sealed class SecretProvider<T>
    where T : class
{
    private T _current;

    public SecretProvider(string name, T initial)
    {
        Name = name;
        _current = initial;
    }

    /// <summary>The secret's name (or "" for an inline value).</summary>
    public string Name { get; }

    public T Current => Volatile.Read(ref _current);

    /// <summary>Raised after <see cref="Current"/> changed.</summary>
    public event Action? Updated;

    public void Update(T value)
    {
        Volatile.Write(ref _current, value);
        Updated?.Invoke();
    }
}
