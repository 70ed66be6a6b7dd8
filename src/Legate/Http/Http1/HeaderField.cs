namespace Legate.Http.Http1;

/// <summary>One field of a <see cref="HttpHeaderMap"/>, valid until the map changes.</summary>
internal readonly ref struct HeaderField
{
    private readonly HttpHeaderMap _map;
    private readonly int _index;

    internal HeaderField(HttpHeaderMap map, int index)
    {
        _map = map;
        _index = index;
    }

    public KnownHeader Known => _map.GetKnown(_index);

    public ReadOnlySpan<byte> NameBytes => _map.GetNameBytes(_index);

    public ReadOnlySpan<byte> ValueBytes => _map.GetValueBytes(_index);

    /// <summary>Lowercase name; allocates for unknown headers.</summary>
    public string Name => _map.GetName(_index);

    /// <summary>Allocates.</summary>
    public string Value => _map.GetValue(_index);
}
