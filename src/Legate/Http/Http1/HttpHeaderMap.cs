using System.Buffers;
using System.Text;

namespace Legate.Http.Http1;

/// <summary>
/// An ordered list of header fields as received: duplicates stay separate entries in their original
/// order, names keep their original case (so a preserve-case formatter can be added later) while
/// every lookup ignores case, and writing lowercases names by default as Envoy does for HTTP/1.1
/// (<see cref="HeaderKeyFormat.Default"/>).
/// </summary>
/// <remarks>
/// Storage is one byte arena plus an array of (offset, length) entries. The parser copies the whole
/// header section into the arena once and records offsets, so parsing a request allocates nothing:
/// no string per name or value. Known names (<see cref="KnownHeader"/>) carry an id and a presence
/// bit, so "is there a Transfer-Encoding?" is one AND. A map is meant to be reused (per connection):
/// <see cref="Clear"/> keeps the arena. Strings are made only on request (<see cref="GetValue(int)"/>,
/// names of unknown headers), and those allocate. The arena grows and never shrinks, so a connection
/// that once received a 60 KiB head keeps a 64 KiB arena until it closes.
/// Bytes map to strings as Latin-1, which round-trips obs-text (0x80-0xFF) unchanged.
/// </remarks>
internal sealed class HttpHeaderMap
{
    private const int InitialArenaSize = 2048;
    private const int InitialEntryCount = 16;

    private byte[] _arena;
    private int _arenaLength;
    private Entry[] _entries;
    private int _count;
    private ulong _present;
    private HeaderMapLookup? _lookup;

    /// <summary>This map as route matchers read headers; one per map (maps are reused request after request).</summary>
    internal HeaderMapLookup Lookup => _lookup ??= new HeaderMapLookup(this);

    public HttpHeaderMap()
    {
        _arena = new byte[InitialArenaSize];
        _entries = new Entry[InitialEntryCount];
    }

    public int Count => _count;

    /// <summary>Bytes held by the arena (names, values and, for parsed heads, the raw head).</summary>
    internal int ArenaLength => _arenaLength;

    public void Clear()
    {
        _count = 0;
        _arenaLength = 0;
        _present = 0;
    }

    public KnownHeader GetKnown(int index) => EntryAt(index).Known;

    /// <summary>The name as received (original case).</summary>
    public ReadOnlySpan<byte> GetNameBytes(int index)
    {
        ref readonly Entry e = ref EntryAt(index);
        return new ReadOnlySpan<byte>(_arena, e.NameStart, e.NameLength);
    }

    public ReadOnlySpan<byte> GetValueBytes(int index)
    {
        ref readonly Entry e = ref EntryAt(index);
        return new ReadOnlySpan<byte>(_arena, e.ValueStart, e.ValueLength);
    }

    /// <summary>The lowercase name: interned for known headers, a new string otherwise.</summary>
    public string GetName(int index)
    {
        ref readonly Entry e = ref EntryAt(index);
        if (e.Known != KnownHeader.None)
        {
            return KnownHeaders.GetName(e.Known);
        }

        return string.Create(e.NameLength, (_arena, e.NameStart), static (chars, state) =>
        {
            ReadOnlySpan<byte> bytes = state._arena.AsSpan(state.NameStart, chars.Length);
            for (int i = 0; i < chars.Length; i++)
            {
                byte b = bytes[i];
                chars[i] = (char)(b is >= (byte)'A' and <= (byte)'Z' ? b + 32 : b);
            }
        });
    }

    /// <summary>The value as a new string (allocates).</summary>
    public string GetValue(int index) => Encoding.Latin1.GetString(GetValueBytes(index));

    public bool Contains(KnownHeader header) => header != KnownHeader.None && (_present & Bit(header)) != 0;

    public bool Contains(string name) => IndexOf(name) >= 0;

    /// <summary>
    /// Whether a field whose name is not a <see cref="KnownHeader"/> is there: most requests have
    /// none, and then the look-ups of Envoy's optional control headers (x-envoy-retry-on and the
    /// like) can be skipped.
    /// </summary>
    public bool HasUnknownNames => (_present & Bit(KnownHeader.None)) != 0;

    public int IndexOf(KnownHeader header, int start = 0)
    {
        if (!Contains(header))
        {
            return -1;
        }

        for (int i = start; i < _count; i++)
        {
            if (_entries[i].Known == header)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Index of the first field with this name (any case) at or after <paramref name="start"/>.</summary>
    public int IndexOf(ReadOnlySpan<byte> name, int start = 0)
    {
        KnownHeader known = KnownHeaders.Lookup(name);
        if (known != KnownHeader.None)
        {
            return IndexOf(known, start);
        }

        if (!HasUnknownNames)
        {
            return -1;
        }

        for (int i = start; i < _count; i++)
        {
            ref readonly Entry e = ref _entries[i];
            if (e.Known == KnownHeader.None && e.NameLength == name.Length &&
                Ascii.EqualsIgnoreCase(new ReadOnlySpan<byte>(_arena, e.NameStart, e.NameLength), name))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Index of the first field with this name (any case) at or after <paramref name="start"/>.</summary>
    public int IndexOf(ReadOnlySpan<char> name, int start = 0)
    {
        KnownHeader known = KnownHeaders.Lookup(name);
        if (known != KnownHeader.None)
        {
            return IndexOf(known, start);
        }

        return HasUnknownNames ? IndexOfUnknown(name, start) : -1;
    }

    private int IndexOfUnknown(ReadOnlySpan<char> name, int start)
    {
        for (int i = start; i < _count; i++)
        {
            ref readonly Entry e = ref _entries[i];
            if (e.Known == KnownHeader.None && e.NameLength == name.Length &&
                Ascii.EqualsIgnoreCase(new ReadOnlySpan<byte>(_arena, e.NameStart, e.NameLength), name))
            {
                return i;
            }
        }

        return -1;
    }

    public int CountOf(KnownHeader header)
    {
        if (!Contains(header))
        {
            return 0;
        }

        int n = 0;
        for (int i = 0; i < _count; i++)
        {
            if (_entries[i].Known == header)
            {
                n++;
            }
        }

        return n;
    }

    /// <summary>
    /// <see cref="GetValue(string)"/> for a name that is not a <see cref="KnownHeader"/> (Envoy's
    /// optional control headers): no known-name look-up, and nothing to scan when the map holds
    /// only known names, which is what most requests carry.
    /// </summary>
    public string? GetUnknownValue(string name)
    {
        System.Diagnostics.Debug.Assert(KnownHeaders.Lookup(name.AsSpan()) == KnownHeader.None, "a known header name");
        var index = HasUnknownNames ? IndexOfUnknown(name.AsSpan(), 0) : -1;
        return index >= 0 ? GetValue(index) : null;
    }

    /// <summary><see cref="Remove(string)"/> for a name that is not a <see cref="KnownHeader"/> (see <see cref="GetUnknownValue"/>).</summary>
    public int RemoveUnknown(string name)
    {
        System.Diagnostics.Debug.Assert(KnownHeaders.Lookup(name.AsSpan()) == KnownHeader.None, "a known header name");
        int removed = 0;
        int i;
        while (HasUnknownNames && (i = IndexOfUnknown(name.AsSpan(), 0)) >= 0)
        {
            RemoveAt(i);
            removed++;
        }

        return removed;
    }

    /// <summary>The value of the first field with this name.</summary>
    public bool TryGetValue(KnownHeader header, out ReadOnlySpan<byte> value)
    {
        int i = IndexOf(header);
        value = i >= 0 ? GetValueBytes(i) : default;
        return i >= 0;
    }

    /// <summary>The value of the first field with this name, as a new string (allocates).</summary>
    public string? GetValue(string name)
    {
        int i = IndexOf(name.AsSpan());
        return i >= 0 ? GetValue(i) : null;
    }

    public void Add(KnownHeader header, ReadOnlySpan<byte> value)
    {
        ArgumentOutOfRangeException.ThrowIfEqual((int)header, (int)KnownHeader.None);
        ValidateValue(value);
        ReadOnlySpan<byte> name = KnownHeaders.GetNameBytes(header);
        EnsureArena(name.Length + value.Length);
        int nameStart = AppendUnchecked(name);
        int valueStart = AppendUnchecked(value);
        AddEntry(nameStart, name.Length, valueStart, value.Length, header);
    }

    public void Add(KnownHeader header, string value)
    {
        ArgumentOutOfRangeException.ThrowIfEqual((int)header, (int)KnownHeader.None);
        ReadOnlySpan<byte> name = KnownHeaders.GetNameBytes(header);
        EnsureArena(name.Length + value.Length);
        int nameStart = AppendUnchecked(name);
        int valueStart = AppendLatin1(value);
        ValidateValue(new ReadOnlySpan<byte>(_arena, valueStart, value.Length));
        AddEntry(nameStart, name.Length, valueStart, value.Length, header);
    }

    /// <summary>Adds a field; throws <see cref="ArgumentException"/> for a name that is not a token or a value with CTLs (CR, LF, NUL...).</summary>
    public void Add(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        if (!HttpChars.IsToken(name))
        {
            throw new ArgumentException("A header name must be a non-empty token (RFC 9110 §5.1).", nameof(name));
        }

        ValidateValue(value);
        EnsureArena(name.Length + value.Length);
        int nameStart = AppendUnchecked(name);
        int valueStart = AppendUnchecked(value);
        AddEntry(nameStart, name.Length, valueStart, value.Length, KnownHeaders.Lookup(name));
    }

    /// <summary>Adds a field; throws <see cref="ArgumentException"/> for a name that is not a token or a value with CTLs or chars above U+00FF.</summary>
    public void Add(string name, string value)
    {
        EnsureArena(name.Length + value.Length);
        int nameStart = AppendLatin1(name);
        int valueStart = AppendLatin1(value);
        ReadOnlySpan<byte> nameBytes = new(_arena, nameStart, name.Length);
        if (!HttpChars.IsToken(nameBytes))
        {
            _arenaLength = nameStart;
            throw new ArgumentException("A header name must be a non-empty token (RFC 9110 §5.1).", nameof(name));
        }

        if (!HttpChars.IsValidFieldValue(new ReadOnlySpan<byte>(_arena, valueStart, value.Length)))
        {
            _arenaLength = nameStart;
            throw new ArgumentException("A header value may not contain CTL characters such as CR, LF or NUL.", nameof(value));
        }

        AddEntry(nameStart, name.Length, valueStart, value.Length, KnownHeaders.Lookup(nameBytes));
    }

    /// <summary>Replaces the value of the first field with this name (keeping its position) and removes the others; adds the field if absent.</summary>
    public void Set(KnownHeader header, ReadOnlySpan<byte> value)
    {
        int i = IndexOf(header);
        if (i < 0)
        {
            Add(header, value);
            return;
        }

        SetValueAt(i, value);
        RemoveFrom(header, i + 1);
    }

    public void Set(KnownHeader header, string value)
    {
        int i = IndexOf(header);
        if (i < 0)
        {
            Add(header, value);
            return;
        }

        SetValueAt(i, value);
        RemoveFrom(header, i + 1);
    }

    public void Set(string name, string value)
    {
        int i = IndexOf(name.AsSpan());
        if (i < 0)
        {
            Add(name, value);
            return;
        }

        SetValueAt(i, value);
        for (int j = _count - 1; j > i; j--)
        {
            if (SameName(j, i))
            {
                RemoveAt(j);
            }
        }
    }

    public void SetValueAt(int index, ReadOnlySpan<byte> value)
    {
        _ = EntryAt(index);
        ValidateValue(value);
        EnsureArena(value.Length);
        int start = AppendUnchecked(value);
        _entries[index].ValueStart = start;
        _entries[index].ValueLength = value.Length;
    }

    public void SetValueAt(int index, string value)
    {
        _ = EntryAt(index);
        EnsureArena(value.Length);
        int start = AppendLatin1(value);
        if (!HttpChars.IsValidFieldValue(new ReadOnlySpan<byte>(_arena, start, value.Length)))
        {
            _arenaLength = start;
            throw new ArgumentException("A header value may not contain CTL characters such as CR, LF or NUL.", nameof(value));
        }

        _entries[index].ValueStart = start;
        _entries[index].ValueLength = value.Length;
    }

    public void RemoveAt(int index)
    {
        KnownHeader known = EntryAt(index).Known;
        Array.Copy(_entries, index + 1, _entries, index, _count - index - 1);
        _count--;
        RefreshBit(known);
    }

    /// <summary>Removes every field with this name; returns how many.</summary>
    public int Remove(KnownHeader header) => Contains(header) ? RemoveFrom(header, 0) : 0;

    /// <summary>Removes every field with this name (any case); returns how many.</summary>
    public int Remove(string name)
    {
        KnownHeader known = KnownHeaders.Lookup(name.AsSpan());
        if (known != KnownHeader.None)
        {
            return Remove(known);
        }

        int removed = 0;
        int i;
        while ((i = IndexOf(name.AsSpan())) >= 0)
        {
            RemoveAt(i);
            removed++;
        }

        return removed;
    }

    /// <summary>Makes this map a copy of <paramref name="other"/> (two array copies).</summary>
    public void CopyFrom(HttpHeaderMap other)
    {
        if (ReferenceEquals(other, this))
        {
            return;
        }

        Clear();
        EnsureArena(other._arenaLength);
        Array.Copy(other._arena, _arena, other._arenaLength);
        _arenaLength = other._arenaLength;
        if (_entries.Length < other._count)
        {
            _entries = new Entry[other._entries.Length];
        }

        Array.Copy(other._entries, _entries, other._count);
        _count = other._count;
        _present = other._present;
    }

    /// <summary>Bytes in the arena, for the parser which records offsets into it.</summary>
    internal ReadOnlySpan<byte> ArenaSpan(int start, int length) => new(_arena, start, length);

    /// <summary>Copies raw bytes into the arena without adding an entry; returns their offset.</summary>
    internal int AppendRaw(ReadOnlySpan<byte> bytes)
    {
        EnsureArena(bytes.Length);
        return AppendUnchecked(bytes);
    }

    /// <summary>Copies raw bytes into the arena without adding an entry; returns their offset.</summary>
    internal int AppendRaw(in ReadOnlySequence<byte> bytes)
    {
        int length = checked((int)bytes.Length);
        EnsureArena(length);
        int start = _arenaLength;
        bytes.CopyTo(_arena.AsSpan(start, length));
        _arenaLength += length;
        return start;
    }

    /// <summary>Adds an entry for bytes already in the arena and already validated by the parser.</summary>
    internal void AddParsed(int nameStart, int nameLength, int valueStart, int valueLength, KnownHeader known)
        => AddEntry(nameStart, nameLength, valueStart, valueLength, known);

    /// <summary>Points an entry's value at bytes already in the arena (parser use: trimmed or rewritten values).</summary>
    internal void SetParsedValue(int index, int valueStart, int valueLength)
    {
        _ = EntryAt(index);
        _entries[index].ValueStart = valueStart;
        _entries[index].ValueLength = valueLength;
    }

    public Enumerator GetEnumerator() => new(this);

    private static ulong Bit(KnownHeader header) => 1UL << (int)header;

    private static void ValidateValue(ReadOnlySpan<byte> value)
    {
        if (!HttpChars.IsValidFieldValue(value))
        {
            throw new ArgumentException("A header value may not contain CTL characters such as CR, LF or NUL.", nameof(value));
        }
    }

    private ref readonly Entry EntryAt(int index)
    {
        if ((uint)index >= (uint)_count)
        {
            throw new ArgumentOutOfRangeException(nameof(index));
        }

        return ref _entries[index];
    }

    private bool SameName(int a, int b)
    {
        ref readonly Entry x = ref _entries[a];
        ref readonly Entry y = ref _entries[b];
        if (x.Known != y.Known)
        {
            return false;
        }

        return x.Known != KnownHeader.None ||
            Ascii.EqualsIgnoreCase(new ReadOnlySpan<byte>(_arena, x.NameStart, x.NameLength), new ReadOnlySpan<byte>(_arena, y.NameStart, y.NameLength));
    }

    private int RemoveFrom(KnownHeader header, int start)
    {
        int write = start;
        int removed = 0;
        for (int read = start; read < _count; read++)
        {
            if (_entries[read].Known == header)
            {
                removed++;
                continue;
            }

            _entries[write++] = _entries[read];
        }

        _count = write;
        if (removed > 0)
        {
            RefreshBit(header);
        }

        return removed;
    }

    private void RefreshBit(KnownHeader header)
    {
        for (int i = 0; i < _count; i++)
        {
            if (_entries[i].Known == header)
            {
                return;
            }
        }

        _present &= ~Bit(header);
    }

    private void AddEntry(int nameStart, int nameLength, int valueStart, int valueLength, KnownHeader known)
    {
        if (_count == _entries.Length)
        {
            Array.Resize(ref _entries, _entries.Length * 2);
        }

        _entries[_count++] = new Entry
        {
            NameStart = nameStart,
            NameLength = nameLength,
            ValueStart = valueStart,
            ValueLength = valueLength,
            Known = known,
        };
        // Bit 0 (KnownHeader.None) says a field outside the known names is there.
        _present |= Bit(known);
    }

    private void EnsureArena(int extra)
    {
        int needed = _arenaLength + extra;
        if (needed <= _arena.Length)
        {
            return;
        }

        // The old array stays valid for spans that still point into it (a value copied from this
        // same map), so growing before copying such a span is safe.
        var bigger = new byte[Math.Max(needed, _arena.Length * 2)];
        Array.Copy(_arena, bigger, _arenaLength);
        _arena = bigger;
    }

    private int AppendUnchecked(ReadOnlySpan<byte> bytes)
    {
        int start = _arenaLength;
        bytes.CopyTo(_arena.AsSpan(start));
        _arenaLength += bytes.Length;
        return start;
    }

    private int AppendLatin1(string text)
    {
        if (text.AsSpan().IndexOfAnyExceptInRange('\0', '\u00FF') >= 0)
        {
            throw new ArgumentException("Header text must be Latin-1 (chars up to U+00FF).", nameof(text));
        }

        int start = _arenaLength;
        Encoding.Latin1.GetBytes(text, _arena.AsSpan(start, text.Length));
        _arenaLength += text.Length;
        return start;
    }

    private struct Entry
    {
        public int NameStart;
        public int NameLength;
        public int ValueStart;
        public int ValueLength;
        public KnownHeader Known;
    }

    /// <summary>Allocation-free enumeration: <c>foreach (HeaderField h in map)</c>.</summary>
    public ref struct Enumerator
    {
        private readonly HttpHeaderMap _map;
        private int _index;

        internal Enumerator(HttpHeaderMap map)
        {
            _map = map;
            _index = -1;
        }

        public readonly HeaderField Current => new(_map, _index);

        public bool MoveNext() => ++_index < _map._count;
    }
}
