using System.Buffers;

namespace Legate.Http;

/// <summary>
/// Body bytes as filters see them. Usually a borrowed view of the codec's input (valid only for
/// the duration of one filter call, nothing copied); a filter that buffers, replaces or appends
/// makes it owned (pooled bytes, returned by <see cref="Clear"/>).
/// </summary>
internal sealed class BodyBuffer
{
    private ReadOnlySequence<byte> _borrowed;
    private byte[]? _owned;
    private int _ownedLength;
    private bool _isOwned;

    public ReadOnlySequence<byte> Data => _isOwned ? new ReadOnlySequence<byte>(_owned!, 0, _ownedLength) : _borrowed;

    public long Length => _isOwned ? _ownedLength : _borrowed.Length;

    public bool IsEmpty => Length == 0;

    /// <summary>Points at <paramref name="data"/> without copying (the caller keeps it alive for the call).</summary>
    public void SetBorrowed(in ReadOnlySequence<byte> data)
    {
        ReleaseOwned();
        _borrowed = data;
    }

    /// <summary>Replaces the content with a copy of <paramref name="data"/>.</summary>
    public void Replace(ReadOnlySpan<byte> data)
    {
        _borrowed = default;
        _isOwned = true;
        _ownedLength = 0;
        EnsureCapacity(data.Length);
        data.CopyTo(_owned);
        _ownedLength = data.Length;
    }

    /// <summary>Appends a copy of <paramref name="data"/> (the buffer becomes owned).</summary>
    public void Append(in ReadOnlySequence<byte> data)
    {
        MakeOwned();
        EnsureCapacity(checked(_ownedLength + (int)data.Length));
        data.CopyTo(_owned.AsSpan(_ownedLength));
        _ownedLength += (int)data.Length;
    }

    /// <summary>Moves the content of <paramref name="other"/> to the end of this buffer and clears it.</summary>
    public void AppendFrom(BodyBuffer other)
    {
        if (!other.IsEmpty)
        {
            Append(other.Data);
        }

        other.Clear();
    }

    public void Clear()
    {
        ReleaseOwned();
        _borrowed = default;
    }

    private void MakeOwned()
    {
        if (_isOwned)
        {
            return;
        }

        var borrowed = _borrowed;
        _borrowed = default;
        _isOwned = true;
        _ownedLength = 0;
        EnsureCapacity((int)borrowed.Length);
        borrowed.CopyTo(_owned);
        _ownedLength = (int)borrowed.Length;
    }

    private void EnsureCapacity(int size)
    {
        if (_owned is not null && _owned.Length >= size)
        {
            return;
        }

        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(size, 4096));
        if (_owned is not null)
        {
            _owned.AsSpan(0, _ownedLength).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_owned);
        }

        _owned = bigger;
    }

    private void ReleaseOwned()
    {
        if (_owned is not null)
        {
            ArrayPool<byte>.Shared.Return(_owned);
            _owned = null;
        }

        _ownedLength = 0;
        _isOwned = false;
    }
}
