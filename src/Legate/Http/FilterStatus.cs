namespace Legate.Http;

/// <summary>What a filter says after seeing headers (Envoy's FilterHeadersStatus, simplified for async filters).</summary>
internal enum FilterHeadersStatus
{
    /// <summary>Pass the headers on to the next filter.</summary>
    Continue,

    /// <summary>
    /// Hold the headers here; body data keeps coming to this filter, and the connection manager
    /// buffers it, until this filter answers <see cref="FilterDataStatus.Continue"/> (or
    /// <see cref="FilterTrailersStatus.Continue"/>): then headers and buffered body move on together.
    /// Also the answer after <see cref="HttpStream.SendLocalReplyAsync"/>.
    /// </summary>
    StopIteration,
}

/// <summary>What a filter says after seeing a body chunk (Envoy's FilterDataStatus).</summary>
internal enum FilterDataStatus
{
    /// <summary>Pass the data (and anything buffered before it here) on.</summary>
    Continue,

    /// <summary>Keep the data in the stream's buffer (bounded by the buffer limit) and stop here for now.</summary>
    StopIterationAndBuffer,

    /// <summary>Drop the data here (the filter consumed or replaced it) and stop here for now.</summary>
    StopIterationNoBuffer,
}

/// <summary>What a filter says after seeing trailers.</summary>
internal enum FilterTrailersStatus
{
    Continue,

    /// <summary>Only meaningful after a local reply: trailers always end the stream, so a filter holding data must continue.</summary>
    StopIteration,
}
