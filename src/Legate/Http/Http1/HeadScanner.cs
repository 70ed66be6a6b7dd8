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
        if (_scanned == 0 && buffer.IsSingleSegment && TryFindWholeHead(buffer.FirstSpan, limit, out var end))
        {
            // The usual case: a whole head in one read. Its bytes are already examined, so nothing is
            // remembered for the next message (the state is still the reset one).
            if (end > limit)
            {
                headEnd = 0;
                head = default;
                return HeadScanResult.TooLarge;
            }

            headEnd = end;
            head = buffer.Slice(0, end);
            return HeadScanResult.Complete;
        }

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
    private HeadScanResult Scan(in ReadOnlySequence<byte> buffer, int limit, out long headStart, out long headEnd)
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

    /// <summary>
    /// One vectorised search for the CRLF CRLF that ends a head which starts at the first byte
    /// (no leading empty line) and ends every line with CRLF, instead of a search per line. Any
    /// head this cannot vouch for (a bare LF line end before the terminator, a leading empty line,
    /// no terminator yet) is left to <see cref="Scan"/>, which finds the same end line by line.
    /// </summary>
    private static bool TryFindWholeHead(ReadOnlySpan<byte> span, int limit, out int headEnd)
    {
        headEnd = 0;
        if (span.IsEmpty || limit < 0 || span[0] is (byte)'\r' or (byte)'\n')
        {
            return false;
        }

        // No further than a head at the limit could end (written so that a huge limit cannot overflow).
        var window = span.Length - 4 > limit ? span[..(limit + 4)] : span;
        var terminator = window.IndexOf("\r\n\r\n"u8);
        if (terminator < 0)
        {
            return false;
        }

        // An empty line ending in a bare LF earlier in the head ("\n\n", or "\n\r\n" before the
        // terminator's own) would end the head there: the line-by-line scan decides those.
        if (span[..(terminator + 1)].IndexOf("\n\n"u8) >= 0 || span[..(terminator + 2)].IndexOf("\n\r\n"u8) >= 0)
        {
            return false;
        }

        headEnd = terminator + 4;
        return true;
    }

    private static byte ByteAt(in ReadOnlySequence<byte> buffer, long offset) => buffer.Slice(offset, 1).FirstSpan[0];
}
