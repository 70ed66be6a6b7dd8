using System.Buffers;

namespace Legate.Http.Http1;

/// <summary>
/// Finds the end of a message head (the first empty line after the start line) in bytes that may
/// arrive in pieces, remembering how far it has looked so each byte is examined once even when the
/// head trickles in one byte per read (no quadratic rescans). Leading empty lines before the start
/// line are skipped (RFC 9112 §2.2: a server SHOULD ignore at least one; Envoy ignores them too).
/// </summary>
/// <remarks>
/// A line ends at LF; a CR right before it is part of the terminator. Bare LF is accepted as a line
/// terminator in heads (RFC 9112 §2.2 MAY, and Envoy's parsers accept it). The bytes of the head are
/// re-serialised, never forwarded raw, so this leniency cannot desynchronise an upstream.
/// </remarks>
internal struct HeadScanner
{
    private long _scanned;
    private long _lineStart;
    private long _headStart;
    private bool _sawStartLine;

    public void Reset() => this = default;

    /// <summary>
    /// Scans for a whole head and, once there is one (or it is too large), resets for the next
    /// message and hands back the head's bytes and where it ends: the part both parsers share.
    /// </summary>
    public HeadScanResult Take(in ReadOnlySequence<byte> buffer, int limit, out long headEnd, out ReadOnlySequence<byte> head)
    {
        var result = Scan(buffer, limit, out long headStart, out headEnd);
        head = result == HeadScanResult.Complete ? buffer.Slice(headStart, headEnd - headStart) : default;
        if (result != HeadScanResult.NeedMoreData)
        {
            Reset();
        }

        return result;
    }

    /// <summary>
    /// Looks for the end of the head in <paramref name="buffer"/>, which must start where it started
    /// on the previous call (unconsumed bytes plus new ones). <paramref name="limit"/> bounds the
    /// head, leading empty lines included.
    /// </summary>
    public HeadScanResult Scan(in ReadOnlySequence<byte> buffer, int limit, out long headStart, out long headEnd)
    {
        headStart = 0;
        headEnd = 0;
        if (buffer.Length < _scanned)
        {
            throw new InvalidOperationException("The buffer lost bytes between two calls: pass the unconsumed bytes again, or Reset().");
        }

        var reader = new SequenceReader<byte>(buffer);
        reader.Advance(_scanned);
        while (reader.TryAdvanceTo((byte)'\n', advancePastDelimiter: true))
        {
            long lineLength = reader.Consumed - 1 - _lineStart;
            bool empty = lineLength == 0 || (lineLength == 1 && ByteAt(buffer, _lineStart) == (byte)'\r');
            _lineStart = reader.Consumed;
            if (!empty)
            {
                _sawStartLine = true;
            }
            else if (!_sawStartLine)
            {
                _headStart = _lineStart;
            }
            else
            {
                if (_lineStart > limit)
                {
                    return HeadScanResult.TooLarge;
                }

                headStart = _headStart;
                headEnd = _lineStart;
                return HeadScanResult.Complete;
            }

            if (_lineStart > limit)
            {
                return HeadScanResult.TooLarge;
            }
        }

        _scanned = buffer.Length;
        return buffer.Length > limit ? HeadScanResult.TooLarge : HeadScanResult.NeedMoreData;
    }

    private static byte ByteAt(in ReadOnlySequence<byte> buffer, long offset) => buffer.Slice(offset, 1).FirstSpan[0];
}
