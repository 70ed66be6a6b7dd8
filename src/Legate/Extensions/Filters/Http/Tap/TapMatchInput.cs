using Legate.Http.Http1;
using Legate.Router.Matching;

namespace Legate.Extensions.Filters.Http.Tap;

/// <summary>The parts of a stream a <see cref="TapMatcher"/> can look at; a null part has not arrived (yet).</summary>
internal readonly struct TapMatchInput
{
    public TapMatchInput(HttpRequestHead? request, string authority, IHeaderLookup? requestTrailers, IHeaderLookup? responseHeaders, IHeaderLookup? responseTrailers, bool final)
    {
        Request = request;
        Authority = authority;
        RequestTrailers = requestTrailers;
        ResponseHeaders = responseHeaders;
        ResponseTrailers = responseTrailers;
        Final = final;
    }

    public HttpRequestHead? Request { get; }

    /// <summary>The request's authority, built only when a matcher looks at <c>:authority</c>.</summary>
    public string Authority { get; }

    public IHeaderLookup? RequestTrailers { get; }

    /// <summary>The response headers, with <c>:status</c>.</summary>
    public IHeaderLookup? ResponseHeaders { get; }

    public IHeaderLookup? ResponseTrailers { get; }

    /// <summary>The stream is over: a part still missing never came.</summary>
    public bool Final { get; }

    public bool TryGetHeaders(TapMatchPart part, out RouteMatchInput headers)
    {
        switch (part)
        {
            case TapMatchPart.RequestHeaders when Request is { } request:
                headers = new RouteMatchInput(request.Method, request.Path, Authority, request.Headers.Lookup);
                return true;
            case TapMatchPart.RequestTrailers when RequestTrailers is { } trailers:
                headers = new RouteMatchInput(string.Empty, string.Empty, string.Empty, trailers);
                return true;
            case TapMatchPart.ResponseHeaders when ResponseHeaders is { } response:
                headers = new RouteMatchInput(string.Empty, string.Empty, string.Empty, response);
                return true;
            case TapMatchPart.ResponseTrailers when ResponseTrailers is { } trailers:
                headers = new RouteMatchInput(string.Empty, string.Empty, string.Empty, trailers);
                return true;
            default:
                headers = default;
                return false;
        }
    }
}

/// <summary>
/// Response headers for matching: the header map plus the <c>:status</c> pseudo-header, which
/// Legate keeps as a number. One per filter instance, re-pointed at each stream's response.
/// </summary>
internal sealed class TapResponseLookup : IHeaderLookup
{
    private static readonly string[] s_statusText = CreateStatusText();
    private HttpResponseHead? _head;

    public TapResponseLookup Reset(HttpResponseHead? head)
    {
        _head = head;
        return this;
    }

    public int Count(string name)
    {
        if (_head is not { } head)
        {
            return 0;
        }

        return name == ":status" ? 1 : head.Headers.Lookup.Count(name);
    }

    public string Get(string name, int index)
    {
        var head = _head!;
        if (name == ":status")
        {
            return head.StatusCode is >= 100 and < 600 ? s_statusText[head.StatusCode - 100] : head.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return head.Headers.Lookup.Get(name, index);
    }

    private static string[] CreateStatusText()
    {
        var text = new string[500];
        for (var i = 0; i < text.Length; i++)
        {
            text[i] = (i + 100).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return text;
    }
}
