namespace Legate.Stats;

/// <summary>
/// A stat name as the store's key: a prefix and a suffix compared and hashed as the text they make
/// together, so <c>("cluster.foo.", "upstream_rq_total")</c> and <c>("", "cluster.foo.upstream_rq_total")</c>
/// are the same key and a stat asked for either way is one object; the key holds the two shared
/// strings, never their concatenation.
/// </summary>
internal readonly struct StatKey : IEquatable<StatKey>
{
    // Names up to this length are joined on the stack to hash and compare them.
    private const int StackLimit = 256;

    public StatKey(string prefix, string suffix)
    {
        Prefix = prefix;
        Suffix = suffix;
    }

    public string Prefix { get; }

    public string Suffix { get; }

    public int Length => Prefix.Length + Suffix.Length;

    public string Join() => Prefix.Length == 0 ? Suffix : string.Concat(Prefix, Suffix);

    public bool Equals(StatKey other)
    {
        if (Length != other.Length)
        {
            return false;
        }

        if (Prefix.Length == other.Prefix.Length)
        {
            // The common case: both split at the same place (the same scope).
            return Prefix.AsSpan().SequenceEqual(other.Prefix) && Suffix.AsSpan().SequenceEqual(other.Suffix);
        }

        Span<char> a = Length <= StackLimit ? stackalloc char[Length] : new char[Length];
        Span<char> b = Length <= StackLimit ? stackalloc char[Length] : new char[Length];
        CopyTo(a);
        other.CopyTo(b);
        return a.SequenceEqual(b);
    }

    public override bool Equals(object? obj) => obj is StatKey other && Equals(other);

    public override int GetHashCode()
    {
        if (Prefix.Length == 0)
        {
            return string.GetHashCode(Suffix.AsSpan());
        }

        Span<char> text = Length <= StackLimit ? stackalloc char[Length] : new char[Length];
        CopyTo(text);
        return string.GetHashCode(text);
    }

    public override string ToString() => Join();

    /// <summary>Writes the name (<see cref="Length"/> characters) into <paramref name="destination"/>.</summary>
    public void CopyTo(Span<char> destination)
    {
        Prefix.AsSpan().CopyTo(destination);
        Suffix.AsSpan().CopyTo(destination[Prefix.Length..]);
    }
}
