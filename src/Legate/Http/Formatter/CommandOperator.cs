using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf.WellKnownTypes;
using Legate.Http.Http1;

namespace Legate.Http.Formatter;

/// <summary>Appends an operator's value to the output; false when it has none (printed as <c>-</c>).</summary>
internal delegate bool AppendValue(in FormatterContext context, StringBuilder output);

/// <summary>An operator's value as a number, for JSON formats; null when it has none.</summary>
internal delegate long? NumberValue(in FormatterContext context);

/// <summary>An operator's value as a protobuf value (metadata), for JSON formats; null when it has none.</summary>
internal delegate Value? ProtoValue(in FormatterContext context);

/// <summary>
/// One compiled command operator (<c>%NAME(argument):max_length%</c>). Text formats call
/// <see cref="Append"/>, which writes into the caller's buffer so the common operators (numbers,
/// header values, addresses, times) allocate nothing; JSON formats use <see cref="Number"/> or
/// <see cref="Proto"/> when set, to keep numbers numbers.
/// </summary>
internal sealed partial class CommandOperator
{
    private CommandOperator(string name, AppendValue append, NumberValue? number = null, ProtoValue? proto = null)
    {
        Name = name;
        Append = append;
        Number = number;
        Proto = proto;
    }

    public string Name { get; }

    public AppendValue Append { get; }

    public NumberValue? Number { get; }

    public ProtoValue? Proto { get; }

    /// <summary><c>:Z</c> after the operator: at most this many characters; 0 = no limit.</summary>
    public int MaxLength { get; private init; }

    /// <summary>Compiles <c>NAME</c>, <c>NAME(argument)</c> or <c>NAME(argument):Z</c>; the problem otherwise.</summary>
    public static CommandOperator? Create(string token, out string problem)
    {
        problem = string.Empty;
        var name = token;
        string? argument = null;
        var maxLength = 0;
        var open = token.IndexOf('(');
        var colon = token.LastIndexOf(':');
        if (open >= 0)
        {
            var close = token.LastIndexOf(')');
            if (close < open)
            {
                problem = "missing ')'";
                return null;
            }

            name = token[..open];
            argument = token[(open + 1)..close];
            var rest = token[(close + 1)..];
            if (rest.Length > 0)
            {
                if (!rest.StartsWith(':') || !int.TryParse(rest.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out maxLength) || maxLength <= 0)
                {
                    problem = $"invalid length \"{rest}\": expected ':' and a positive number";
                    return null;
                }
            }
        }
        else if (colon > 0 && int.TryParse(token.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var length) && length > 0)
        {
            name = token[..colon];
            maxLength = length;
        }

        var op = Build(name, argument, out problem);
        return op is null ? null : new CommandOperator(op.Name, op.Append, op.Number, op.Proto) { MaxLength = maxLength };
    }

    private static CommandOperator? Build(string name, string? argument, out string problem)
    {
        problem = string.Empty;
        var needsArgument = name is "REQ" or "RESP" or "TRAILER" or "DYNAMIC_METADATA" or "UPSTREAM_METADATA" or "FILTER_STATE" or "ENVIRONMENT";
        if (needsArgument && string.IsNullOrEmpty(argument))
        {
            problem = name switch
            {
                "REQ" or "RESP" or "TRAILER" => $"needs a header name, e.g. %{name}(x-request-id)%",
                "DYNAMIC_METADATA" => "needs a namespace and optional keys, e.g. %DYNAMIC_METADATA(envoy.lb:key)%",
                "UPSTREAM_METADATA" => "needs a namespace and a key, e.g. %UPSTREAM_METADATA([\"envoy.lb\", \"version\"])%",
                "ENVIRONMENT" => "needs a variable name, e.g. %ENVIRONMENT(HOSTNAME)%",
                _ => "needs a key, e.g. %FILTER_STATE(my.key)%",
            };
            return null;
        }

        if (argument is not null && !needsArgument && name is not ("START_TIME" or "GRPC_STATUS") && !TakesTimeFormat(name))
        {
            problem = $"%{name}% takes no argument";
            return null;
        }

        switch (name)
        {
            case "START_TIME":
                var format = string.IsNullOrEmpty(argument) ? StartTimeFormat.Default : StartTimeFormat.Parse(argument);
                return Op(name, (in FormatterContext c, StringBuilder o) =>
                {
                    format.Append(o, c.Info.StartTime);
                    return true;
                });
            case "REQ":
                return Header(name, argument!, static (in FormatterContext c) => c.Request?.Headers, request: true);
            case "RESP":
                return Header(name, argument!, static (in FormatterContext c) => c.Response?.Headers, request: false);
            case "TRAILER":
                return Header(name, argument!, static (in FormatterContext c) => c.ResponseTrailers, request: false);
            case "RESPONSE_CODE":
                return NumberOp(name, static (in FormatterContext c) => c.Info.ResponseCode);
            case "RESPONSE_CODE_DETAILS":
                return StringOp(name, static (in FormatterContext c) => c.Info.ResponseCodeDetails);
            case "CONNECTION_TERMINATION_DETAILS":
                return StringOp(name, static (in FormatterContext c) => c.Info.ConnectionTerminationDetails);
            case "RESPONSE_FLAGS":
                return StringOp(name, static (in FormatterContext c) => ResponseFlagNames.Format(c.Info.ResponseFlags));
            case "RESPONSE_FLAGS_LONG":
                return StringOp(name, static (in FormatterContext c) => ResponseFlagNames.FormatLong(c.Info.ResponseFlags));
            case "BYTES_RECEIVED":
                return NumberOp(name, static (in FormatterContext c) => c.Info.BytesReceived);
            case "BYTES_SENT":
                return NumberOp(name, static (in FormatterContext c) => c.Info.BytesSent);
            case "DURATION":
                // Before the stream ends (a local reply body) it is the time so far.
                return NumberOp(name, static (in FormatterContext c) => Millis(c.Info.StartTimestamp, c.Info.EndTimestamp != 0 ? c.Info.EndTimestamp : Stopwatch.GetTimestamp()));
            case "REQUEST_DURATION":
                return NumberOp(name, static (in FormatterContext c) => Millis(c.Info.StartTimestamp, c.Info.LastDownstreamRxByteReceived));
            case "REQUEST_TX_DURATION":
                return NumberOp(name, static (in FormatterContext c) => Millis(c.Info.StartTimestamp, c.Info.LastUpstreamTxByteSent));
            case "RESPONSE_DURATION":
                return NumberOp(name, static (in FormatterContext c) => Millis(c.Info.StartTimestamp, c.Info.FirstUpstreamRxByteReceived));
            case "RESPONSE_TX_DURATION":
                return NumberOp(name, static (in FormatterContext c) => c.Info.FirstUpstreamRxByteReceived == 0 ? null : Millis(c.Info.FirstUpstreamRxByteReceived, c.Info.LastDownstreamTxByteSent));
            case "PROTOCOL":
                return StringOp(name, static (in FormatterContext c) => c.Request is null ? null : c.Info.Protocol);
            case "UPSTREAM_PROTOCOL":
                return StringOp(name, static (in FormatterContext c) => c.Info.UpstreamProtocol);
            case "UPSTREAM_HOST":
                // The chosen host's address (Envoy's upstreamHost()->address()): known before, and
                // without, a connection (a connect failure logs the host it failed to reach).
                return Address(name, static (in FormatterContext c) => c.Info.UpstreamHost?.Address ?? c.Info.UpstreamRemoteAddress, withPort: true);
            case "UPSTREAM_REMOTE_ADDRESS":
                return Address(name, static (in FormatterContext c) => c.Info.UpstreamRemoteAddress, withPort: true);
            case "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT":
                return Address(name, static (in FormatterContext c) => c.Info.UpstreamRemoteAddress, withPort: false);
            case "UPSTREAM_LOCAL_ADDRESS":
                return Address(name, static (in FormatterContext c) => c.Info.UpstreamLocalAddress, withPort: true);
            case "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":
                return Address(name, static (in FormatterContext c) => c.Info.UpstreamLocalAddress, withPort: false);
            case "UPSTREAM_CLUSTER":
                return StringOp(name, static (in FormatterContext c) => c.Info.UpstreamCluster?.Name);
            case "UPSTREAM_TRANSPORT_FAILURE_REASON":
                return StringOp(name, static (in FormatterContext c) => c.Info.UpstreamTransportFailureReason);
            case "UPSTREAM_REQUEST_ATTEMPT_COUNT":
                return NumberOp(name, static (in FormatterContext c) => c.Info.AttemptCount);
            case "DOWNSTREAM_REMOTE_ADDRESS":
                return Address(name, static (in FormatterContext c) => c.Info.DownstreamRemoteAddress, withPort: true);
            case "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT":
                return Address(name, static (in FormatterContext c) => c.Info.DownstreamRemoteAddress, withPort: false);
            case "DOWNSTREAM_REMOTE_PORT":
                return NumberOp(name, static (in FormatterContext c) => c.Info.DownstreamRemoteAddress?.Port);
            case "DOWNSTREAM_DIRECT_REMOTE_ADDRESS":
                return Address(name, static (in FormatterContext c) => c.Info.DownstreamDirectRemoteAddress ?? c.Info.DownstreamRemoteAddress, withPort: true);
            case "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT":
                return Address(name, static (in FormatterContext c) => c.Info.DownstreamDirectRemoteAddress ?? c.Info.DownstreamRemoteAddress, withPort: false);
            case "DOWNSTREAM_LOCAL_ADDRESS":
                return Address(name, static (in FormatterContext c) => c.Info.DownstreamLocalAddress, withPort: true);
            case "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":
                return Address(name, static (in FormatterContext c) => c.Info.DownstreamLocalAddress, withPort: false);
            case "DOWNSTREAM_LOCAL_PORT":
                return NumberOp(name, static (in FormatterContext c) => c.Info.DownstreamLocalAddress?.Port);
            case "REQUESTED_SERVER_NAME":
                return StringOp(name, static (in FormatterContext c) => c.Info.RequestedServerName);
            case "ROUTE_NAME":
                return StringOp(name, static (in FormatterContext c) => c.Info.RouteName);
            case "VIRTUAL_CLUSTER_NAME":
                return StringOp(name, static (in FormatterContext c) => c.Info.VirtualClusterName);
            case "HOSTNAME":
                var host = Dns.GetHostName();
                return StringOp(name, (in FormatterContext _) => host);
            case "CONNECTION_ID":
                return NumberOp(name, static (in FormatterContext c) => c.Info.ConnectionId == 0 ? null : (long)c.Info.ConnectionId);
            case "STREAM_ID":
                // Envoy's stream id is the request id (x-request-id) for HTTP streams.
                return StringOp(name, static (in FormatterContext c) => c.Info.RequestId ?? c.Request?.Headers.GetValue("x-request-id"));
            case "GRPC_STATUS":
                var grpc = GrpcStatusOp(name, argument);
                if (grpc is null)
                {
                    problem = $"GRPC_STATUS format \"{argument}\" is not CAMEL_STRING, SNAKE_STRING or NUMBER";
                }

                return grpc;
            case "GRPC_STATUS_NUMBER":
                return GrpcStatusOp(name, "NUMBER");
            case "TLS_JA3_FINGERPRINT":
                return StringOp(name, static (in FormatterContext c) => c.Info.Ja3Hash ?? c.Info.DownstreamTls?.Ja3Hash);
            case "ACCESS_LOG_TYPE":
                return StringOp(name, static (in FormatterContext c) => c.AccessLogType ?? (c.Request is null ? "NotSet" : "DownstreamEnd"));
            case "LOCAL_REPLY_BODY":
                return StringOp(name, static (in FormatterContext c) => c.LocalReplyBody);
            case "DYNAMIC_METADATA":
                return DynamicMetadata(name, argument!);
            case "UPSTREAM_METADATA":
                return UpstreamMetadata(name, argument!, out problem);
            case "FILTER_STATE":
                return FilterState(name, argument!, out problem);
            case "ENVIRONMENT":
                // Read once, when the format is compiled, as Envoy does.
                var value = Environment.GetEnvironmentVariable(argument!);
                return StringOp(name, (in FormatterContext _) => value);
            default:
                if (TlsOperator(name, argument, out problem) is { } tls)
                {
                    return tls;
                }

                if (problem.Length == 0)
                {
                    problem = "command operator not supported yet";
                }

                return null;
        }
    }

    private static CommandOperator Op(string name, AppendValue append) => new(name, append);

    private static CommandOperator NumberOp(string name, NumberValue number) =>
        new(name, (in FormatterContext c, StringBuilder o) =>
        {
            if (number(c) is not { } n)
            {
                return false;
            }

            o.Append(n);
            return true;
        }, number);

    private static CommandOperator StringOp(string name, StringFunc value) =>
        new(name, (in FormatterContext c, StringBuilder o) =>
        {
            if (value(c) is not { Length: > 0 } text)
            {
                return false;
            }

            o.Append(text);
            return true;
        });

    private delegate string? StringFunc(in FormatterContext context);

    private delegate IPEndPoint? EndpointFunc(in FormatterContext context);

    private delegate HttpHeaderMap? HeadersFunc(in FormatterContext context);

    private static CommandOperator Address(string name, EndpointFunc endpoint, bool withPort) =>
        new(name, (in FormatterContext c, StringBuilder o) =>
        {
            if (endpoint(c) is not { } e)
            {
                return false;
            }

            AppendEndpoint(o, e, withPort);
            return true;
        });

    /// <summary>Envoy's spelling: <c>10.0.0.1:80</c>, <c>[::1]:80</c>, and without port <c>10.0.0.1</c>, <c>::1</c>.</summary>
    internal static void AppendEndpoint(StringBuilder o, IPEndPoint endpoint, bool withPort)
    {
        Span<char> buffer = stackalloc char[64];
        var v6 = endpoint.AddressFamily == AddressFamily.InterNetworkV6;
        if (!endpoint.Address.TryFormat(buffer, out var written))
        {
            o.Append(endpoint.Address.ToString());
            written = 0;
        }

        if (withPort && v6)
        {
            o.Append('[').Append(buffer[..written]).Append(']');
        }
        else
        {
            o.Append(buffer[..written]);
        }

        if (withPort)
        {
            o.Append(':').Append(endpoint.Port);
        }
    }

    private static long? Millis(long start, long end) =>
        start == 0 || end == 0 ? null : (long)Stopwatch.GetElapsedTime(start, end).TotalMilliseconds;

    private static CommandOperator Header(string name, string argument, HeadersFunc headers, bool request)
    {
        // X?Y: X, else Y. Names are matched without case; the pseudo headers read the request line.
        var names = argument.Split('?', 2);
        var first = names[0].ToLowerInvariant();
        var second = names.Length > 1 ? names[1].ToLowerInvariant() : null;
        return new(name, (in FormatterContext c, StringBuilder o) =>
        {
            if (request && c.Request is { } head)
            {
                return AppendRequestHeader(head, first, o) || (second is not null && AppendRequestHeader(head, second, o));
            }

            if (headers(c) is not { } map)
            {
                return false;
            }

            return AppendHeader(map, first, o) || (second is not null && AppendHeader(map, second, o));
        });
    }

    private static bool AppendRequestHeader(HttpRequestHead head, string name, StringBuilder o)
    {
        switch (name)
        {
            case ":path":
                AppendLatin1(o, head.PathBytes);
                return true;
            case ":method":
                o.Append(head.Method);
                return true;
            case ":authority":
                if (head.Authority.IsEmpty)
                {
                    return false;
                }

                AppendLatin1(o, head.Authority);
                return true;
            case ":scheme":
                o.Append(head.Scheme ?? "http");
                return true;
            default:
                return AppendHeader(head.Headers, name, o);
        }
    }

    private static bool AppendHeader(HttpHeaderMap headers, string name, StringBuilder o)
    {
        var index = headers.IndexOf(name.AsSpan());
        if (index < 0)
        {
            return false;
        }

        AppendLatin1(o, headers.GetValueBytes(index));
        return true;
    }

    private static void AppendLatin1(StringBuilder o, ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            o.Append((char)b);
        }
    }

    private static CommandOperator? GrpcStatusOp(string name, string? argument)
    {
        var style = string.IsNullOrEmpty(argument) ? "CAMEL_STRING" : argument;
        if (style is not ("CAMEL_STRING" or "SNAKE_STRING" or "NUMBER"))
        {
            return null;
        }

        NumberValue number = static (in FormatterContext c) => GrpcStatus.Of(c);
        return new(name, (in FormatterContext c, StringBuilder o) =>
        {
            if (GrpcStatus.Of(c) is not { } status)
            {
                return false;
            }

            switch (style)
            {
                case "NUMBER":
                    o.Append(status);
                    break;
                case "SNAKE_STRING":
                    o.Append(GrpcStatus.SnakeName(status));
                    break;
                default:
                    o.Append(GrpcStatus.CamelName(status));
                    break;
            }

            return true;
        }, style == "NUMBER" ? number : null);
    }

    /// <summary>
    /// <c>%UPSTREAM_METADATA(["namespace", "key", …])%</c> (the header formatter's JSON form) or
    /// <c>%UPSTREAM_METADATA(namespace:key:…)%</c>: the chosen host's filter metadata.
    /// </summary>
    private static CommandOperator? UpstreamMetadata(string name, string argument, out string problem)
    {
        problem = string.Empty;
        string[] parts;
        if (argument.TrimStart().StartsWith('['))
        {
            try
            {
                parts = System.Text.Json.JsonSerializer.Deserialize<string[]>(argument) ?? [];
            }
            catch (System.Text.Json.JsonException ex)
            {
                problem = $"invalid JSON list of keys: {ex.Message}";
                return null;
            }
        }
        else
        {
            parts = argument.Split(':');
        }

        if (parts.Length < 2)
        {
            problem = "needs a namespace and a key, e.g. %UPSTREAM_METADATA([\"envoy.lb\", \"version\"])%";
            return null;
        }

        return Metadata(name, parts, static (in FormatterContext c) => c.Info.UpstreamHost?.Metadata);
    }

    private delegate Envoy.Config.Core.V3.Metadata? MetadataSource(in FormatterContext context);

    private static CommandOperator DynamicMetadata(string name, string argument) =>
        // NAMESPACE:KEY:KEY... — the namespace alone prints the whole struct.
        Metadata(name, argument.Split(':'), static (in FormatterContext c) => c.Info.DynamicMetadata);

    private static CommandOperator Metadata(string name, string[] parts, MetadataSource source)
    {
        var ns = parts[0];
        var keys = parts[1..];
        ProtoValue proto = (in FormatterContext c) =>
        {
            if (source(c) is not { } metadata || !metadata.FilterMetadata.TryGetValue(ns, out var root))
            {
                return null;
            }

            var value = Value.ForStruct(root);
            foreach (var key in keys)
            {
                if (value.KindCase != Value.KindOneofCase.StructValue || !value.StructValue.Fields.TryGetValue(key, out var child))
                {
                    return null;
                }

                value = child;
            }

            return value;
        };
        return new(name, (in FormatterContext c, StringBuilder o) =>
        {
            if (proto(c) is not { } value)
            {
                return false;
            }

            AppendProtoValue(o, value);
            return true;
        }, proto: proto);
    }

    /// <summary>Strings as they are, numbers and booleans as JSON scalars, structs and lists as JSON.</summary>
    internal static void AppendProtoValue(StringBuilder o, Value value)
    {
        switch (value.KindCase)
        {
            case Value.KindOneofCase.StringValue:
                o.Append(value.StringValue);
                break;
            case Value.KindOneofCase.BoolValue:
                o.Append(value.BoolValue ? "true" : "false");
                break;
            case Value.KindOneofCase.NumberValue:
                o.Append(value.NumberValue.ToString(CultureInfo.InvariantCulture));
                break;
            case Value.KindOneofCase.NullValue:
                o.Append("null");
                break;
            default:
                o.Append(Google.Protobuf.JsonFormatter.Default.Format(value));
                break;
        }
    }

    private static CommandOperator? FilterState(string name, string argument, out string problem)
    {
        problem = string.Empty;
        var parts = argument.Split(':');
        var key = parts[0];
        if (parts.Length > 1 && parts[1] is not ("PLAIN" or "TYPED"))
        {
            problem = $"FILTER_STATE serialization \"{parts[1]}\" is not PLAIN or TYPED";
            return null;
        }

        return StringOp(name, (in FormatterContext c) => c.Info.FilterState is { } state && state.TryGetValue(key, out var value) ? value : null);
    }
}
