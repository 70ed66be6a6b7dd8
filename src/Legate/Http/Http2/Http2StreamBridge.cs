using System.Diagnostics;
using Legate.Http.Http1;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;

namespace Legate.Http.Http2;

/// <summary>
/// One HTTP/2 request from Kestrel, run as an <see cref="HttpStream"/> (the codec → stream half of
/// Envoy's HTTP/2 ServerConnection): the request head converted into an <see cref="HttpRequestHead"/>,
/// the body streamed from <c>Request.BodyReader</c> into <see cref="HttpStream.DecodeDataAsync"/>,
/// the trailers into <see cref="HttpStream.DecodeTrailersAsync"/>; the response goes out through
/// <see cref="Http2ResponseEncoder"/>. A client RST_STREAM (RequestAborted) is a downstream disconnect.
/// </summary>
internal static class Http2StreamBridge
{
    private const string Protocol = "HTTP/2";

    public static async Task RunAsync(HttpContext context, HttpConnectionManagerConfig config)
    {
        var stats = config.Stats;
        var info = context.Features.Get<Http2ConnectionInfo>();
        var encoder = info is not null ? info.Streams.Rent(context, config) : Http2StreamPool.Create(context, config);
        var stream = encoder.Stream;
        var head = encoder.Head;
        stats.DownstreamRqTotal.Inc();
        stats.DownstreamRqHttp2Total.Inc();
        stats.DownstreamRqActive.Inc();
        var valid = TryConvertRequest(context, head);
        var extended = valid ? Http2ExtendedConnect.FromRequest(context, head) : null;
        encoder.ExtendedConnect = extended;
        encoder.ConnectionInfo = info;
        stream.Begin(head, Stopwatch.GetTimestamp());
        stream.Info.Protocol = Protocol;
        stream.Info.DownstreamLocalAddress = info?.LocalAddress;
        stream.Info.DownstreamRemoteAddress = info?.RemoteAddress;
        stream.Info.DownstreamDirectRemoteAddress = info?.RemoteAddress;
        stream.Info.ConnectionId = info?.ConnectionId ?? 0;
        stream.Info.DownstreamTls = info?.Tls;
        stream.Info.RequestedServerName = info?.Tls is { ServerName.Length: > 0 } tls ? tls.ServerName : null;
        stream.Info.ConnectionDynamicMetadata = info?.DynamicMetadata;
        stream.Info.ProxyProtocolTlvs = info?.ProxyProtocolTlvs;

        var abort = context.RequestAborted.UnsafeRegister(static state => ((Http2ResponseEncoder)state!).OnRequestAborted(), encoder);
        try
        {
            if (!valid)
            {
                stats.DownstreamCxProtocolError.Inc();
                await stream.SendLocalReplyAsync(400, string.Empty, Http2Details.InvalidHeaderField, ResponseFlags.DownstreamProtocolError).ConfigureAwait(false);
                return;
            }

            if ((head.MethodKind == HttpMethodKind.Connect || extended is not null) && config.Proto.Http2ProtocolOptions?.AllowConnect != true)
            {
                // Envoy's HTTP/2 codec refuses CONNECT unless http2_protocol_options.allow_connect.
                stats.DownstreamCxProtocolError.Inc();
                stream.ResetStream(ResponseFlags.DownstreamProtocolError, Http2Details.ViolationOfMessagingRule);
                return;
            }

            if (!ApplyUnderscorePolicy(head, config))
            {
                // Envoy's HTTP/2 codec resets the stream (no 400) and counts it.
                stats.Http2Codec.RequestsRejectedWithUnderscoresInHeaders.Inc();
                stream.ResetStream(ResponseFlags.DownstreamProtocolError, Http2Details.UnexpectedUnderscore);
                return;
            }

            ConnectionManagerUtility.MutateRequestHeaders(stream, info?.IsTls ?? false);
            ClientCertHeaders.Mutate(stream, info?.Tls);
            if (extended is not null || head.MethodKind == HttpMethodKind.Connect)
            {
                stats.DownstreamCxUpgradesTotal.Inc();
            }

            var hasBody = extended is not null || (context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? true);
            if (!hasBody)
            {
                await stream.DecodeHeadersAsync(endStream: true).ConfigureAwait(false);
            }
            else
            {
                await stream.DecodeHeadersAsync(endStream: false).ConfigureAwait(false);
                await (extended is null ? ReadBodyAsync(context, stream, head, encoder) : extended.RelayRequestAsync(stream, encoder)).ConfigureAwait(false);
            }

            // Also after a reset: the router's response work must end before the stream does.
            await stream.WaitForResponseAsync().ConfigureAwait(false);
            await encoder.CompleteAsync().ConfigureAwait(false);
        }
        finally
        {
            await abort.DisposeAsync().ConfigureAwait(false);
            stream.End();
            if (info is not null)
            {
                info.OnStreamClosed(stream);
                info.Streams.Return(encoder);
            }
            else
            {
                stream.Release();
            }
        }
    }

    /// <summary>Streams the request body (and trailers) through the filters; a client reset mid-body resets the stream (DC).</summary>
    private static async ValueTask ReadBodyAsync(HttpContext context, HttpStream stream, HttpRequestHead head, Http2ResponseEncoder encoder)
    {
        try
        {
            await ReadBodyCoreAsync(context, stream, head).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or ConnectionAbortedException or OperationCanceledException or BadHttpRequestException)
        {
            // The client reset the stream, the connection went away, or the stream was reset here.
            stream.Config.Log.Debug($"h2 request body ended early: {ex.Message}");
            encoder.OnRequestAborted();
        }
    }

    private static async ValueTask ReadBodyCoreAsync(HttpContext context, HttpStream stream, HttpRequestHead head)
    {
        var reader = context.Request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync(stream.ResetToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (result.IsCompleted)
            {
                var trailers = ReadTrailers(context, head.Trailers);
                if (!trailers)
                {
                    await stream.DecodeDataAsync(buffer, endStream: true).ConfigureAwait(false);
                    reader.AdvanceTo(buffer.End);
                    return;
                }

                if (!buffer.IsEmpty)
                {
                    await stream.DecodeDataAsync(buffer, endStream: false).ConfigureAwait(false);
                }

                reader.AdvanceTo(buffer.End);
                await stream.DecodeTrailersAsync(head.Trailers).ConfigureAwait(false);
                return;
            }

            if (!buffer.IsEmpty)
            {
                await stream.DecodeDataAsync(buffer, endStream: false).ConfigureAwait(false);
            }

            reader.AdvanceTo(buffer.End);
            if (stream.IsReset || stream.ResponseComplete)
            {
                // Nobody wants the rest: returning lets Kestrel end the stream (RST_STREAM NO_ERROR after a complete response).
                return;
            }
        }
    }

    /// <summary>
    /// Fills <paramref name="head"/> from Kestrel's request: method, <c>:path</c> as received (the raw
    /// target, never the decoded path), <c>:scheme</c>, <c>:authority</c> (Kestrel's Host) and the
    /// headers, minus anything connection-specific. False when the request cannot be represented.
    /// </summary>
    internal static bool TryConvertRequest(HttpContext context, HttpRequestHead head)
    {
        head.Reset();
        var request = context.Features.Get<IHttpRequestFeature>()!;
        head.SetMethod(request.Method);
        head.Version = Http1Version.Http11;
        head.Scheme = request.Scheme;
        try
        {
            if (head.MethodKind == HttpMethodKind.Connect)
            {
                head.TargetForm = RequestTargetForm.Authority;
            }
            else
            {
                var target = request.RawTarget;
                head.TargetForm = target == "*" ? RequestTargetForm.Asterisk : RequestTargetForm.Origin;
                head.SetPath(target);
            }

            foreach (var (name, values) in request.Headers)
            {
                if (name.Length == 0 || name[0] == ':')
                {
                    continue;
                }

                var known = KnownHeaders.Lookup(name.AsSpan());
                if (known == KnownHeader.Cookie && values.Count > 1)
                {
                    // HTTP/2 splits cookies into fields; one HTTP/1.1 field joins them with "; " (RFC 9113 §8.2.3).
                    head.Headers.Add(known, string.Join("; ", values.ToArray()));
                    continue;
                }

                AddAll(head.Headers, known, name, values);
            }
        }
        catch (ArgumentException)
        {
            return false;
        }

        ConnectionManagerUtility.StripHopByHop(head.Headers, keepUpgrade: false);

        // Kestrel answers 100-continue itself when the body is first read; Envoy drops Expect too.
        head.Headers.Remove(KnownHeader.Expect);
        if (head.Headers.TryGetValue(KnownHeader.ContentLength, out ReadOnlySpan<byte> length)
            && System.Buffers.Text.Utf8Parser.TryParse(length, out long contentLength, out var used) && used == length.Length)
        {
            head.ContentLength = contentLength;
            head.Framing = Http1BodyFraming.ContentLength;
        }

        return true;
    }

    /// <summary>
    /// <c>headers_with_underscores_action</c> on an HTTP/2 request head (Kestrel's codec accepts any
    /// token): DROP_HEADER removes the fields and counts <c>http2.dropped_headers_with_underscores</c>;
    /// false under REJECT_REQUEST when a name has an underscore.
    /// </summary>
    private static bool ApplyUnderscorePolicy(HttpRequestHead head, HttpConnectionManagerConfig config)
    {
        var action = config.ParserOptions.HeadersWithUnderscoresAction;
        if (action == HeadersWithUnderscoresAction.Allow)
        {
            return true;
        }

        List<string>? names = null;
        foreach (var field in head.Headers)
        {
            if (field.NameBytes.Contains((byte)'_'))
            {
                if (action == HeadersWithUnderscoresAction.RejectRequest)
                {
                    return false;
                }

                (names ??= new List<string>()).Add(field.Name);
            }
        }

        if (names is not null)
        {
            var dropped = 0;
            foreach (var name in names)
            {
                dropped += head.Headers.Remove(name);
            }

            config.Stats.Http2Codec.DroppedHeadersWithUnderscores.Add(dropped);
        }

        return true;
    }

    /// <summary>Copies the request trailers into <paramref name="trailers"/>; false when there are none.</summary>
    private static bool ReadTrailers(HttpContext context, HttpHeaderMap trailers)
    {
        var feature = context.Features.Get<IHttpRequestTrailersFeature>();
        if (feature is null || !feature.Available || feature.Trailers.Count == 0)
        {
            return false;
        }

        foreach (var (name, values) in feature.Trailers)
        {
            if (name.Length > 0 && name[0] != ':')
            {
                AddAll(trailers, KnownHeaders.Lookup(name.AsSpan()), name, values);
            }
        }

        return trailers.Count > 0;
    }

    private static void AddAll(HttpHeaderMap map, KnownHeader known, string name, StringValues values)
    {
        foreach (var value in values)
        {
            if (value is null)
            {
                continue;
            }

            if (known != KnownHeader.None)
            {
                map.Add(known, value);
            }
            else
            {
                map.Add(name, value);
            }
        }
    }
}
