using Legate.Http.Http1;

namespace Legate.Http.Formatter;

/// <summary>
/// What a format string and an access log filter read (Envoy's <c>HttpFormatterContext</c>): the
/// stream's info and, when there are any, the request head, the response head and trailers, and
/// the local reply body. A connection-level log (listener access log) has only the info.
/// </summary>
internal readonly struct FormatterContext
{
    public FormatterContext(StreamInfo info, HttpRequestHead? request = null, HttpResponseHead? response = null, HttpHeaderMap? responseTrailers = null, string? localReplyBody = null)
    {
        Info = info;
        Request = request;
        Response = response;
        ResponseTrailers = responseTrailers;
        LocalReplyBody = localReplyBody;
    }

    public StreamInfo Info { get; }

    public HttpRequestHead? Request { get; }

    public HttpResponseHead? Response { get; }

    public HttpHeaderMap? ResponseTrailers { get; }

    public string? LocalReplyBody { get; }

    /// <summary>
    /// Envoy's AccessLogType name for <c>%ACCESS_LOG_TYPE%</c> when the logger says (tcp_proxy:
    /// TcpUpstreamConnected, TcpPeriodic, TcpConnectionEnd); null = DownstreamEnd for a request,
    /// NotSet for a connection.
    /// </summary>
    public string? AccessLogType { get; init; }

    /// <summary>The context of <paramref name="stream"/> as it is now.</summary>
    public static FormatterContext For(HttpStream stream, string? localReplyBody = null) =>
        new(stream.Info, stream.RequestHeaders, stream.ResponseHeaders, stream.ResponseTrailers, localReplyBody);
}
