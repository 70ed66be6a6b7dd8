namespace Legate.Http.Http1;

/// <summary>
/// Validates and adds one field line (header or trailer). The line is already in the map's arena,
/// so the entry just records offsets: no copy, no string.
/// </summary>
internal static class HeaderFieldParser
{
    /// <summary>
    /// Parses the field line at [<paramref name="start"/>, <paramref name="end"/>) of the map's arena
    /// (line terminator excluded). Rules, in order: a line starting with whitespace is obs-fold
    /// (RFC 9112 §5.2, rejected; also covers whitespace between the start line and the first field,
    /// §2.2); a colon is required; the name is a non-empty token with no whitespace before the
    /// colon (§5.1: MUST reject); the value, stripped of leading and trailing OWS, has no CTL but
    /// HTAB (RFC 9110 §5.5: this is where NUL and bare CR are caught); then the underscore policy;
    /// then the count limit (dropped fields do not count, as in Envoy).
    /// </summary>
    public static Http1ErrorCode ParseLine(
        HttpHeaderMap map,
        int start,
        int end,
        HeadersWithUnderscoresAction underscores,
        int maxCount,
        ref int dropped)
    {
        ReadOnlySpan<byte> line = map.ArenaSpan(start, end - start);
        if (HttpChars.IsWhitespace(line[0]))
        {
            return Http1ErrorCode.ObsoleteLineFolding;
        }

        int colon = line.IndexOf((byte)':');
        if (colon < 0)
        {
            return Http1ErrorCode.InvalidHeaderLine;
        }

        ReadOnlySpan<byte> name = line[..colon];
        if (name.Length == 0)
        {
            return Http1ErrorCode.InvalidHeaderName;
        }

        if (HttpChars.IsWhitespace(name[^1]))
        {
            return Http1ErrorCode.WhitespaceBeforeColon;
        }

        if (!HttpChars.IsToken(name))
        {
            return Http1ErrorCode.InvalidHeaderName;
        }

        int valueStart = colon + 1;
        int valueEnd = line.Length;
        while (valueStart < valueEnd && HttpChars.IsWhitespace(line[valueStart]))
        {
            valueStart++;
        }

        while (valueEnd > valueStart && HttpChars.IsWhitespace(line[valueEnd - 1]))
        {
            valueEnd--;
        }

        if (!HttpChars.IsValidFieldValue(line[valueStart..valueEnd]))
        {
            return Http1ErrorCode.InvalidHeaderValue;
        }

        if (underscores != HeadersWithUnderscoresAction.Allow && name.Contains((byte)'_'))
        {
            if (underscores == HeadersWithUnderscoresAction.RejectRequest)
            {
                return Http1ErrorCode.UnderscoreInHeaderName;
            }

            dropped++;
            return Http1ErrorCode.None;
        }

        map.AddParsed(start, colon, start + valueStart, valueEnd - valueStart, KnownHeaders.Lookup(name));
        return map.Count > maxCount ? Http1ErrorCode.TooManyHeaders : Http1ErrorCode.None;
    }

    /// <summary>
    /// Parses every field line of a header section held in the map's arena at
    /// [<paramref name="pos"/>, <paramref name="end"/>), which ends with the empty line.
    /// </summary>
    public static Http1ErrorCode ParseSection(
        HttpHeaderMap map,
        int pos,
        int end,
        HeadersWithUnderscoresAction underscores,
        int maxCount,
        ref int dropped)
    {
        while (pos < end)
        {
            int offset = map.ArenaSpan(pos, end - pos).IndexOf((byte)'\n');
            if (offset < 0)
            {
                return Http1ErrorCode.InvalidHeaderLine;
            }

            int lf = pos + offset;
            int lineEnd = lf;
            if (lineEnd > pos && map.ArenaSpan(lineEnd - 1, 1)[0] == (byte)'\r')
            {
                lineEnd--;
            }

            if (lineEnd == pos)
            {
                // The empty line that ends the section (the scanner guarantees it is the last line).
                return Http1ErrorCode.None;
            }

            Http1ErrorCode error = ParseLine(map, pos, lineEnd, underscores, maxCount, ref dropped);
            if (error != Http1ErrorCode.None)
            {
                return error;
            }

            pos = lf + 1;
        }

        return Http1ErrorCode.None;
    }
}
