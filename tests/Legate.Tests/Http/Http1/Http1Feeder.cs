using System.Buffers;
using System.Text;
using Legate.Http.Http1;

namespace Legate.Tests.Http.Http1;

/// <summary>
/// Plays a connection's input through the codec the way a PipeReader loop would: <c>step</c> new
/// bytes become readable per read, unconsumed bytes are handed back together with the new ones, and
/// the buffer is split into segments of <c>segmentSize</c> bytes. Collects every message (pipelined
/// ones too) until an error or the end of input, where the body reader is told about end of stream.
/// </summary>
internal static class Http1Feeder
{
    public const int AllAtOnce = int.MaxValue;

    public static List<ParsedMessage> Requests(string input, Http1ParserOptions? options = null, int step = AllAtOnce, int segmentSize = AllAtOnce)
        => Requests(Http1Bytes.Of(input), options, step, segmentSize);

    public static List<ParsedMessage> Requests(byte[] input, Http1ParserOptions? options = null, int step = AllAtOnce, int segmentSize = AllAtOnce)
    {
        options ??= Http1ParserOptions.ServerDefaults;
        var parser = new Http1RequestParser(options);
        var head = new HttpRequestHead();
        var body = new Http1BodyReader(options, isRequest: true);
        return Run(
            input,
            step,
            segmentSize,
            (in ReadOnlySequence<byte> buffer, out long consumed, out Http1Error error) => parser.ParseHead(buffer, head, out consumed, out error),
            () =>
            {
                body.Start(head);
                return Snapshot(head);
            },
            body,
            () => Fields(head.Trailers));
    }

    /// <param name="requests">The method (and whether it asked for an upgrade) of each request the responses answer, in order.</param>
    public static List<ParsedMessage> Responses(
        string input,
        IReadOnlyList<(HttpMethodKind Method, bool Upgrade)>? requests = null,
        Http1ParserOptions? options = null,
        int step = AllAtOnce,
        int segmentSize = AllAtOnce)
    {
        options ??= Http1ParserOptions.ClientDefaults;
        var parser = new Http1ResponseParser(options);
        var head = new HttpResponseHead();
        var body = new Http1BodyReader(options, isRequest: false);
        int final = 0;
        return Run(
            Http1Bytes.Of(input),
            step,
            segmentSize,
            (in ReadOnlySequence<byte> buffer, out long consumed, out Http1Error error) =>
            {
                (HttpMethodKind method, bool upgrade) = requests is not null && final < requests.Count ? requests[final] : (HttpMethodKind.Get, false);
                Http1ParseStatus status = parser.ParseHead(buffer, head, method, upgrade, out consumed, out error);
                if (status == Http1ParseStatus.Complete && !head.IsInformational)
                {
                    final++;
                }

                return status;
            },
            () =>
            {
                body.Start(head);
                return Snapshot(head);
            },
            body,
            () => Fields(head.Trailers));
    }

    public static ParsedMessage Snapshot(HttpRequestHead head) => new()
    {
        StartLine = $"{head.Method} {(head.MethodKind == HttpMethodKind.Connect ? Encoding.Latin1.GetString(head.Authority) : head.Path)} {head.Version} {head.TargetForm} scheme={head.Scheme ?? "-"}"
            + (head.IsUpgrade ? " upgrade" : "") + (head.ExpectContinue ? " expect-100" : "")
            + (head.DroppedHeadersWithUnderscores > 0 ? $" dropped={head.DroppedHeadersWithUnderscores}" : ""),
        Headers = Fields(head.Headers),
        Framing = head.Framing.ToString(),
        ContentLength = head.ContentLength,
        KeepAlive = head.KeepAlive,
    };

    public static ParsedMessage Snapshot(HttpResponseHead head) => new()
    {
        StartLine = $"{head.Version} {head.StatusCode} {head.Reason}" + (head.IsInformational ? " informational" : ""),
        Headers = Fields(head.Headers),
        Framing = head.Framing.ToString(),
        ContentLength = head.ContentLength,
        KeepAlive = head.KeepAlive,
    };

    public static string Fields(HttpHeaderMap map)
    {
        var text = new StringBuilder();
        foreach (HeaderField field in map)
        {
            text.Append(field.Name).Append(": ").Append(field.Value).Append('\n');
        }

        return text.ToString();
    }

    private delegate Http1ParseStatus ParseHead(in ReadOnlySequence<byte> buffer, out long consumed, out Http1Error error);

    private static List<ParsedMessage> Run(
        byte[] input,
        int step,
        int segmentSize,
        ParseHead parseHead,
        Func<ParsedMessage> startBody,
        Http1BodyReader body,
        Func<string> trailers)
    {
        var messages = new List<ParsedMessage>();
        int start = 0;
        int available = (int)Math.Min(step, input.Length);
        ParsedMessage? current = null;
        var bodyText = new StringBuilder();
        while (true)
        {
            ReadOnlySequence<byte> buffer = Http1Bytes.Segmented(input.AsMemory(start, available - start), segmentSize);
            bool atEnd = available == input.Length;
            if (current is null)
            {
                if (start == input.Length)
                {
                    return messages;
                }

                Http1ParseStatus status = parseHead(buffer, out long consumed, out Http1Error error);
                if (status == Http1ParseStatus.Error)
                {
                    messages.Add(Failed(new ParsedMessage(), error, ""));
                    return messages;
                }

                if (status == Http1ParseStatus.NeedMoreData)
                {
                    if (atEnd)
                    {
                        messages.Add(new ParsedMessage { Truncated = true });
                        return messages;
                    }

                    available = (int)Math.Min((long)available + step, input.Length);
                    continue;
                }

                start += (int)consumed;
                current = startBody();
                bodyText.Clear();
                continue;
            }

            Http1BodyStatus bodyStatus = body.Read(buffer, out ReadOnlySequence<byte> data, out long used, out Http1Error bodyError);
            bodyText.Append(Http1Bytes.Text(data));
            start += (int)used;
            switch (bodyStatus)
            {
                case Http1BodyStatus.Complete:
                    messages.Add(current with { Body = bodyText.ToString(), Trailers = trailers() });
                    current = null;
                    break;
                case Http1BodyStatus.Error:
                    messages.Add(Failed(current, bodyError, bodyText.ToString()));
                    return messages;
                case Http1BodyStatus.Data:
                    break;
                case Http1BodyStatus.NeedMoreData:
                    if (atEnd)
                    {
                        if (body.Finish(out Http1Error eofError) == Http1BodyStatus.Complete)
                        {
                            messages.Add(current with { Body = bodyText.ToString(), Trailers = trailers() });
                        }
                        else
                        {
                            messages.Add(Failed(current, eofError, bodyText.ToString()));
                        }

                        return messages;
                    }

                    available = (int)Math.Min((long)available + step, input.Length);
                    break;
            }
        }
    }

    private static ParsedMessage Failed(ParsedMessage message, Http1Error error, string body) => message with
    {
        ErrorStatus = error.StatusCode,
        ErrorDetails = error.Details,
        ErrorCode = error.Code.ToString(),
        Body = body,
    };
}
