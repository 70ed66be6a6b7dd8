using System.Text;
using Envoy.Config.Core.V3;
using Envoy.Data.Tap.V3;
using Google.Protobuf;
using Legate.Http.Http1;

namespace Legate.Extensions.Filters.Http.Tap;

/// <summary>Builds the <c>http_buffered_trace</c> of a tapped stream.</summary>
internal static class TapTraceBuilder
{
    public static TraceWrapper Build(
        HttpRequestHead request,
        in TapBody requestBody,
        HttpHeaderMap? requestTrailers,
        HttpResponseHead? response,
        in TapBody responseBody,
        HttpHeaderMap? responseTrailers,
        bool bodyAsString)
    {
        var trace = new HttpBufferedTrace { Request = new HttpBufferedTrace.Types.Message() };

        // Envoy's request header map starts with the pseudo-headers; HTTP/1's Host is :authority there.
        var headers = trace.Request.Headers;
        var authority = request.Authority;
        if (!authority.IsEmpty)
        {
            headers.Add(Header(":authority", Encoding.Latin1.GetString(authority)));
        }

        headers.Add(Header(":path", request.Path));
        headers.Add(Header(":method", request.Method));
        if (request.Scheme is { } scheme)
        {
            headers.Add(Header(":scheme", scheme));
        }

        AddHeaders(headers, request.Headers, skipHost: true);
        trace.Request.Body = Body(requestBody, bodyAsString);
        AddHeaders(trace.Request.Trailers, requestTrailers, skipHost: false);

        if (response is not null)
        {
            trace.Response = new HttpBufferedTrace.Types.Message();
            trace.Response.Headers.Add(Header(":status", response.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            AddHeaders(trace.Response.Headers, response.Headers, skipHost: false);
            trace.Response.Body = Body(responseBody, bodyAsString);
            AddHeaders(trace.Response.Trailers, responseTrailers, skipHost: false);
        }

        return new TraceWrapper { HttpBufferedTrace = trace };
    }

    /// <summary><c>record_headers_received_time</c> and <c>record_downstream_connection</c>.</summary>
    public static void AddDetails(HttpBufferedTrace trace, DateTimeOffset? requestHeadersTime, DateTimeOffset? responseHeadersTime, Legate.Http.StreamInfo? connection)
    {
        if (requestHeadersTime is { } requestTime)
        {
            trace.Request.HeadersReceivedTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(requestTime);
        }

        if (responseHeadersTime is { } responseTime && trace.Response is { } response)
        {
            response.HeadersReceivedTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(responseTime);
        }

        if (connection is not null)
        {
            trace.DownstreamConnection = new Connection
            {
                LocalAddress = Address(connection.DownstreamLocalAddress),
                RemoteAddress = Address(connection.DownstreamRemoteAddress),
            };
        }
    }

    private static Address? Address(System.Net.IPEndPoint? endpoint) => endpoint is null
        ? null
        : new Address { SocketAddress = new SocketAddress { Address = endpoint.Address.ToString(), PortValue = (uint)endpoint.Port } };

    private static HeaderValue Header(string key, string value) => new() { Key = key, Value = value };

    private static void AddHeaders(Google.Protobuf.Collections.RepeatedField<HeaderValue> target, HttpHeaderMap? map, bool skipHost)
    {
        if (map is null)
        {
            return;
        }

        for (var i = 0; i < map.Count; i++)
        {
            if (skipHost && map.GetKnown(i) == KnownHeader.Host)
            {
                continue;
            }

            target.Add(Header(map.GetName(i), map.GetValue(i)));
        }
    }

    /// <summary>The body message; null (absent) when the stream had no body data.</summary>
    private static Body? Body(in TapBody body, bool asString)
    {
        if (!body.Seen)
        {
            return null;
        }

        var message = new Body { Truncated = body.Truncated };
        if (asString)
        {
            message.AsString = Encoding.UTF8.GetString(body.Span);
        }
        else
        {
            message.AsBytes = ByteString.CopyFrom(body.Span);
        }

        return message;
    }
}
