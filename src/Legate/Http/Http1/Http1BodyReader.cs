using System.Buffers;

namespace Legate.Http.Http1;

/// <summary>
/// Decodes a message body from its framing: Content-Length, chunked (with trailers), read to
/// close, or a raw tunnel. Body bytes are returned as slices of the input, never copied.
/// </summary>
/// <remarks>
/// <para>
/// Contract per call: <c>Read(buffer, out data, out consumed, out error)</c>. <c>data</c> is a slice
/// of <c>buffer</c> that lies within the first <c>consumed</c> bytes; use it before advancing the
/// reader past <c>consumed</c>. One call returns at most one contiguous run of body bytes (one
/// chunk, or part of one); chunk framing around it is consumed greedily, so a small chunked body in
/// one buffer comes back as a single <see cref="Http1BodyStatus.Complete"/> carrying its data.
/// Bytes after <c>consumed</c> on completion belong to the next message (pipelining).
/// At end of stream call <see cref="Finish"/>: it completes close-delimited bodies and tunnels and
/// reports a truncated message otherwise.
/// </para>
/// <para>
/// Chunked framing is strict (RFC 9112 §7.1): chunk-size is 1*HEXDIG only (no sign, no "0x", no
/// leading whitespace) and must fit in 63 bits; whitespace after it is allowed only before a ';'
/// extension (BWS); extensions are skipped but may hold no CTL except HTAB (a lone CR or LF inside
/// one is an error, the chunk-extension smuggling vector Envoy also closed); every line ends with
/// CRLF, bare LF is refused here (unlike in heads) because chunk boundaries are exactly where
/// parsers that disagree get smuggled through; the chunk-size line is bounded (16 KiB with its
/// extensions). Trailer fields follow the header rules and limits.
/// </para>
/// <para>Allocation: none, except trailer arena growth and strings a caller asks of the trailer map.</para>
/// </remarks>
internal sealed class Http1BodyReader
{
    /// <summary>Bound on one chunk-size line including extensions (Node.js uses a similar bound).</summary>
    internal const int MaxChunkHeaderLength = 16 * 1024;

    private readonly Http1ParserOptions _options;
    private readonly bool _isRequest;
    private State _state;
    private Http1BodyFraming _framing;
    private long _remaining;
    private int _chunkHeaderLength;
    private HttpHeaderMap? _trailers;
    private int _trailerBytes;
    private int _droppedTrailers;
    private Http1ErrorCode _error;

    /// <param name="options">Limits for trailers, the underscore policy (requests), enable_trailers.</param>
    /// <param name="isRequest">True on the server side (errors map to request statuses and the underscore policy applies).</param>
    public Http1BodyReader(Http1ParserOptions options, bool isRequest)
    {
        _options = options;
        _isRequest = isRequest;
    }

    private enum State : byte
    {
        NotStarted,
        ContentLength,
        Raw,
        ChunkSizeFirst,
        ChunkSize,
        ChunkSizeWhitespace,
        ChunkExtension,
        ChunkSizeLf,
        ChunkData,
        ChunkDataCr,
        ChunkDataLf,
        Trailers,
        Complete,
        Error,
    }

    public Http1BodyFraming Framing => _framing;

    public bool IsComplete => _state == State.Complete;

    /// <summary>Trailers dropped by <see cref="HeadersWithUnderscoresAction.DropHeader"/>.</summary>
    public int DroppedTrailersWithUnderscores => _droppedTrailers;

    public void Start(HttpRequestHead head) => Start(head.Framing, head.ContentLength, head.Trailers);

    public void Start(HttpResponseHead head) => Start(head.Framing, head.ContentLength, head.Trailers);

    /// <param name="trailers">Receives the trailers of a chunked body (cleared first).</param>
    public void Start(Http1BodyFraming framing, long contentLength, HttpHeaderMap? trailers)
    {
        _framing = framing;
        _trailers = trailers;
        _trailers?.Clear();
        _trailerBytes = 0;
        _droppedTrailers = 0;
        _chunkHeaderLength = 0;
        _error = Http1ErrorCode.None;
        _remaining = 0;
        switch (framing)
        {
            case Http1BodyFraming.None:
                _state = State.Complete;
                break;
            case Http1BodyFraming.ContentLength:
                ArgumentOutOfRangeException.ThrowIfNegative(contentLength);
                _remaining = contentLength;
                _state = contentLength == 0 ? State.Complete : State.ContentLength;
                break;
            case Http1BodyFraming.Chunked:
                _state = State.ChunkSizeFirst;
                break;
            case Http1BodyFraming.CloseDelimited:
            case Http1BodyFraming.Tunnel:
                _state = State.Raw;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(framing));
        }
    }

    /// <summary>Decodes from the start of <paramref name="buffer"/> (the unconsumed bytes).</summary>
    public Http1BodyStatus Read(in ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> data, out long consumed, out Http1Error error)
    {
        data = default;
        consumed = 0;
        error = default;
        switch (_state)
        {
            case State.NotStarted:
                throw new InvalidOperationException("Start() the body reader first.");
            case State.Complete:
                return Http1BodyStatus.Complete;
            case State.Error:
                error = MakeError(_error);
                return Http1BodyStatus.Error;
            case State.ContentLength:
            {
                long take = Math.Min(buffer.Length, _remaining);
                if (take == 0)
                {
                    return Http1BodyStatus.NeedMoreData;
                }

                data = buffer.Slice(0, take);
                consumed = take;
                _remaining -= take;
                if (_remaining == 0)
                {
                    _state = State.Complete;
                    return Http1BodyStatus.Complete;
                }

                return Http1BodyStatus.Data;
            }

            case State.Raw:
                if (buffer.IsEmpty)
                {
                    return Http1BodyStatus.NeedMoreData;
                }

                data = buffer;
                consumed = buffer.Length;
                return Http1BodyStatus.Data;
            default:
                return ReadChunked(buffer, out data, out consumed, out error);
        }
    }

    /// <summary>The connection reached end of stream: complete a close-delimited body or tunnel, or report truncation.</summary>
    public Http1BodyStatus Finish(out Http1Error error)
    {
        error = default;
        switch (_state)
        {
            case State.NotStarted:
            case State.Complete:
                _state = State.Complete;
                return Http1BodyStatus.Complete;
            case State.Raw:
                _state = State.Complete;
                return Http1BodyStatus.Complete;
            case State.Error:
                error = MakeError(_error);
                return Http1BodyStatus.Error;
            default:
                Fail(Http1ErrorCode.PrematureEndOfMessage);
                error = MakeError(_error);
                return Http1BodyStatus.Error;
        }
    }

    private Http1BodyStatus ReadChunked(in ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> data, out long consumed, out Http1Error error)
    {
        data = default;
        error = default;
        var reader = new SequenceReader<byte>(buffer);
        bool haveData = false;
        while (true)
        {
            switch (_state)
            {
                case State.ChunkData:
                {
                    if (haveData || reader.End)
                    {
                        consumed = reader.Consumed;
                        return haveData ? Http1BodyStatus.Data : Http1BodyStatus.NeedMoreData;
                    }

                    long take = Math.Min(reader.Remaining, _remaining);
                    data = buffer.Slice(reader.Position, take);
                    reader.Advance(take);
                    _remaining -= take;
                    haveData = true;
                    if (_remaining == 0)
                    {
                        _state = State.ChunkDataCr;
                    }

                    continue;
                }

                case State.Trailers:
                {
                    Http1ErrorCode code = ReadTrailers(ref reader, out bool complete);
                    consumed = reader.Consumed;
                    if (code != Http1ErrorCode.None)
                    {
                        // Deliver the data first; the next call meets the same bad line again.
                        if (haveData)
                        {
                            return Http1BodyStatus.Data;
                        }

                        Fail(code);
                        error = MakeError(code);
                        return Http1BodyStatus.Error;
                    }

                    if (complete)
                    {
                        _state = State.Complete;
                        return Http1BodyStatus.Complete;
                    }

                    return haveData ? Http1BodyStatus.Data : Http1BodyStatus.NeedMoreData;
                }

                case State.Complete:
                    consumed = reader.Consumed;
                    return Http1BodyStatus.Complete;

                default:
                {
                    if (!reader.TryRead(out byte b))
                    {
                        consumed = reader.Consumed;
                        return haveData ? Http1BodyStatus.Data : Http1BodyStatus.NeedMoreData;
                    }

                    Http1ErrorCode code = Step(b);
                    if (code != Http1ErrorCode.None)
                    {
                        // Step leaves the state alone on error, so the byte can be read again.
                        reader.Rewind(1);
                        consumed = reader.Consumed;
                        if (haveData)
                        {
                            return Http1BodyStatus.Data;
                        }

                        Fail(code);
                        error = MakeError(code);
                        return Http1BodyStatus.Error;
                    }

                    continue;
                }
            }
        }
    }

    /// <summary>One byte of chunk framing. Changes no state when it returns an error.</summary>
    private Http1ErrorCode Step(byte b)
    {
        switch (_state)
        {
            case State.ChunkSizeFirst:
            {
                int digit = HexValue(b);
                if (digit < 0)
                {
                    return Http1ErrorCode.InvalidChunkSize;
                }

                _remaining = digit;
                _chunkHeaderLength = 1;
                _state = State.ChunkSize;
                return Http1ErrorCode.None;
            }

            case State.ChunkSize:
            {
                if (_chunkHeaderLength >= MaxChunkHeaderLength)
                {
                    return Http1ErrorCode.ChunkHeaderTooLong;
                }

                int digit = HexValue(b);
                if (digit >= 0)
                {
                    if (_remaining > (long.MaxValue >> 4))
                    {
                        return Http1ErrorCode.InvalidChunkSize;
                    }

                    _remaining = (_remaining << 4) | (long)digit;
                }
                else if (b == (byte)';')
                {
                    _state = State.ChunkExtension;
                }
                else if (HttpChars.IsWhitespace(b))
                {
                    _state = State.ChunkSizeWhitespace;
                }
                else if (b == (byte)'\r')
                {
                    _state = State.ChunkSizeLf;
                }
                else
                {
                    return Http1ErrorCode.InvalidChunkSize;
                }

                _chunkHeaderLength++;
                return Http1ErrorCode.None;
            }

            case State.ChunkSizeWhitespace:
                if (_chunkHeaderLength >= MaxChunkHeaderLength)
                {
                    return Http1ErrorCode.ChunkHeaderTooLong;
                }

                if (b == (byte)';')
                {
                    _state = State.ChunkExtension;
                }
                else if (!HttpChars.IsWhitespace(b))
                {
                    return Http1ErrorCode.InvalidChunkSize;
                }

                _chunkHeaderLength++;
                return Http1ErrorCode.None;

            case State.ChunkExtension:
                if (_chunkHeaderLength >= MaxChunkHeaderLength)
                {
                    return Http1ErrorCode.ChunkHeaderTooLong;
                }

                if (b == (byte)'\r')
                {
                    _state = State.ChunkSizeLf;
                }
                else if (b != (byte)'\t' && (b < 0x20 || b == 0x7F))
                {
                    return Http1ErrorCode.InvalidChunkFraming;
                }

                _chunkHeaderLength++;
                return Http1ErrorCode.None;

            case State.ChunkSizeLf:
                if (b != (byte)'\n')
                {
                    return Http1ErrorCode.InvalidChunkFraming;
                }

                _chunkHeaderLength = 0;
                _state = _remaining == 0 ? State.Trailers : State.ChunkData;
                return Http1ErrorCode.None;

            case State.ChunkDataCr:
                if (b != (byte)'\r')
                {
                    return Http1ErrorCode.InvalidChunkFraming;
                }

                _state = State.ChunkDataLf;
                return Http1ErrorCode.None;

            case State.ChunkDataLf:
                if (b != (byte)'\n')
                {
                    return Http1ErrorCode.InvalidChunkFraming;
                }

                _state = State.ChunkSizeFirst;
                return Http1ErrorCode.None;

            default:
                throw new InvalidOperationException($"No byte step in state {_state}.");
        }
    }

    /// <summary>
    /// Reads whole trailer lines (a partial line stays unconsumed for the next call) up to the empty
    /// line that ends the message. Lines may end in bare LF, as in heads. On error the reader is
    /// left before the offending line and nothing is counted.
    /// </summary>
    private Http1ErrorCode ReadTrailers(ref SequenceReader<byte> reader, out bool complete)
    {
        complete = false;
        int limit = _options.MaxHeadBytes;
        while (true)
        {
            long before = reader.Consumed;
            if (!reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n', advancePastDelimiter: true))
            {
                long pending = reader.Sequence.Length - before;
                reader.Rewind(reader.Consumed - before);
                return _trailerBytes + pending > limit ? Http1ErrorCode.HeadersTooLarge : Http1ErrorCode.None;
            }

            long lineBytes = reader.Consumed - before;
            if (_trailerBytes + lineBytes > limit)
            {
                reader.Rewind(lineBytes);
                return Http1ErrorCode.HeadersTooLarge;
            }

            long length = line.Length;
            if (length > 0 && LastByte(line) == (byte)'\r')
            {
                length--;
            }

            if (length == 0)
            {
                _trailerBytes += (int)lineBytes;
                if (!_options.EnableTrailers)
                {
                    _trailers?.Clear();
                }

                complete = true;
                return Http1ErrorCode.None;
            }

            HttpHeaderMap map = _trailers ??= new HttpHeaderMap();
            int start = map.AppendRaw(line.Slice(0, length));
            int dropped = _droppedTrailers;
            HeadersWithUnderscoresAction underscores = _isRequest ? _options.HeadersWithUnderscoresAction : HeadersWithUnderscoresAction.Allow;
            Http1ErrorCode code = HeaderFieldParser.ParseLine(map, start, start + (int)length, underscores, _options.MaxHeadersCount, ref dropped);
            if (code != Http1ErrorCode.None)
            {
                reader.Rewind(lineBytes);
                return code;
            }

            _droppedTrailers = dropped;
            _trailerBytes += (int)lineBytes;
        }
    }

    private static byte LastByte(in ReadOnlySequence<byte> sequence)
        => sequence.IsSingleSegment ? sequence.FirstSpan[^1] : sequence.Slice(sequence.Length - 1).FirstSpan[0];

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };

    private void Fail(Http1ErrorCode code)
    {
        _state = State.Error;
        _error = code;
    }

    private Http1Error MakeError(Http1ErrorCode code) => _isRequest ? Http1Error.Request(code) : Http1Error.Response(code);
}
