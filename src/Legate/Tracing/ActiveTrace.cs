using System.Globalization;
using System.Text;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Upstream;

namespace Legate.Tracing;

/// <summary>
/// One traced request's spans (the tracing half of Envoy's ActiveStream and
/// HttpTracerUtility): the connection manager's span, started once the route is known, and the
/// router's egress span of the current upstream attempt. Tags are set as Envoy sets them when
/// each span ends (<c>finalizeDownstreamSpan</c>/<c>finalizeUpstreamSpan</c>).
/// </summary>
internal sealed class ActiveTrace
{
    private const string DecoratorOperationHeader = "x-envoy-decorator-operation";

    private readonly TracingConfig _config;
    private string? _decoratedOperation;
    private Span? _upstreamSpan;
    private Host? _upstreamHost;

    private ActiveTrace(TracingConfig config, Span span)
    {
        _config = config;
        Span = span;
    }

    /// <summary>The connection manager's span (Envoy's activeSpan()).</summary>
    public Span Span { get; }

    /// <summary>The egress span of the current upstream attempt, when upstream spans are spawned.</summary>
    public Span? UpstreamSpan => _upstreamSpan;

    /// <summary>
    /// Envoy's traceRequest: starts the span with the sampling decision, applies the route's
    /// decorator, and passes the decorated operation on (egress: as a request header) or takes the
    /// caller's (ingress: <c>x-envoy-decorator-operation</c> renames the span, then is removed).
    /// </summary>
    public static ActiveTrace Start(HttpStream stream, TracingConfig config)
    {
        var headers = stream.RequestHeaders.Headers;
        var name = config.Operation == OperationName.Egress ? "egress " + stream.AuthorityString() : "ingress";
        var span = config.Tracer.StartSpan(config, headers, name, stream.Info.StartTime, stream.Info.TraceReason != TraceReason.NotTraceable);
        span.SetTag(Tags.NodeId, config.NodeId);
        span.SetTag(Tags.Zone, config.Zone);
        var trace = new ActiveTrace(config, span);
        var propagate = true;
        if (stream.Route?.Decorator is { } decorator)
        {
            span.SetOperation(decorator.Operation);
            trace._decoratedOperation = decorator.Operation;
            propagate = decorator.Propagate ?? true;
        }

        if (!propagate)
        {
            trace._decoratedOperation = null;
        }

        if (config.Operation == OperationName.Egress)
        {
            if (trace._decoratedOperation is { } operation)
            {
                headers.Set(DecoratorOperationHeader, operation);
            }
        }
        else if (headers.GetValue(DecoratorOperationHeader) is { } requested)
        {
            if (requested.Length > 0)
            {
                span.SetOperation(requested);
                trace._decoratedOperation = null;
            }

            headers.Remove(DecoratorOperationHeader);
        }

        return trace;
    }

    /// <summary>
    /// The router starts an upstream attempt (its headers are final): with <c>spawn_upstream_span</c>
    /// or the router's <c>start_child_span</c> a child span "router &lt;cluster&gt; egress" carries the
    /// attempt and its context goes upstream, else the connection manager's span's context does.
    /// A previous attempt's span ends here (it was retried).
    /// </summary>
    public void OnUpstreamAttempt(HttpStream stream, HttpRequestHead headers, Cluster cluster, bool startChildSpan)
    {
        if (_upstreamSpan is not null)
        {
            FinishUpstreamSpan(stream, retried: true);
        }

        if (!startChildSpan && !_config.SpawnUpstreamSpan)
        {
            Span.InjectContext(headers.Headers);
            return;
        }

        var child = Span.SpawnChild(_config, "router " + cluster.Info.Name + " egress", DateTimeOffset.UtcNow);
        child.SetTag(Tags.Component, Tags.Proxy);
        if (stream.Info.AttemptCount > 1)
        {
            child.SetTag(Tags.RetryCount, (stream.Info.AttemptCount - 1).ToString(CultureInfo.InvariantCulture));
        }

        _upstreamSpan = child;
        _upstreamHost = stream.Info.UpstreamHost;
        child.InjectContext(headers.Headers);
    }

    /// <summary>
    /// A shadow (mirror) of this request starts: as Envoy's async client, a child span named
    /// <c>mirror</c> whose sampling is the mirror policy's <c>trace_sampled</c>.
    /// </summary>
    public Span StartShadowSpan(bool sampled)
    {
        var span = Span.SpawnChild(_config, "mirror", DateTimeOffset.UtcNow);
        span.SetSampled(sampled);
        return span;
    }

    /// <summary>The shadow got its answer (status 0: none): Envoy's upstream span tags, then the span ends.</summary>
    public static void FinishShadowSpan(Span span, Cluster cluster, Host? host, int status, Version version)
    {
        span.SetTag(Tags.Component, Tags.Proxy);
        span.SetTag(Tags.HttpProtocol, version.Major >= 2 ? "HTTP/2" : "HTTP/1.1");
        span.SetTag(Tags.UpstreamCluster, cluster.Info.Name);
        span.SetTag(Tags.UpstreamClusterName, cluster.Info.Name);
        if (host is not null)
        {
            span.SetTag(Tags.UpstreamAddress, host.Address.ToString());
        }

        span.SetTag(Tags.HttpStatusCode, status.ToString(CultureInfo.InvariantCulture));
        if (status == 0 || status >= 500 && status < 600)
        {
            span.SetTag(Tags.Error, Tags.True);
        }

        span.Finish();
    }

    /// <summary>
    /// Response headers on their way downstream: an ingress span's decorated operation goes back to
    /// the caller; on egress the upstream's <c>x-envoy-decorator-operation</c> renames the span and is removed.
    /// </summary>
    public void OnResponseHeaders(HttpHeaderMap headers)
    {
        if (_config.Operation == OperationName.Ingress)
        {
            if (_decoratedOperation is { } operation)
            {
                headers.Set(DecoratorOperationHeader, operation);
            }

            return;
        }

        if (headers.GetValue(DecoratorOperationHeader) is { } requested)
        {
            if (requested.Length > 0)
            {
                Span.SetOperation(requested);
            }

            headers.Remove(DecoratorOperationHeader);
        }
    }

    /// <summary>The stream ended: the upstream span, then the connection manager's span, get their tags and end.</summary>
    public void Finish(HttpStream stream)
    {
        if (_upstreamSpan is not null)
        {
            FinishUpstreamSpan(stream, retried: false);
        }

        var span = Span;
        var info = stream.Info;
        var request = stream.RequestHeaders;
        var headers = request.Headers;
        if (headers.GetValue("x-request-id") is { } requestId)
        {
            span.SetTag(Tags.GuidXRequestId, requestId);
        }

        span.SetTag(Tags.HttpUrl, BuildUrl(request, _config.MaxPathTagLength));
        span.SetTag(Tags.HttpMethod, request.Method);
        span.SetTag(Tags.DownstreamCluster, NonEmptyOrDash(headers.GetValue("x-envoy-downstream-service-cluster")));
        span.SetTag(Tags.UserAgent, NonEmptyOrDash(headers.GetValue("user-agent")));
        span.SetTag(Tags.HttpProtocol, info.Protocol);
        if (info.DownstreamDirectRemoteAddress is { } peer)
        {
            span.SetTag(Tags.PeerAddress, Unmap(peer.Address).ToString());
        }

        if (headers.GetValue("x-client-trace-id") is { } clientTraceId)
        {
            span.SetTag(Tags.GuidXClientTraceId, clientTraceId);
        }

        if (GrpcStatus.IsGrpcRequest(headers))
        {
            // Envoy's addGrpcRequestTags: each tag only when its header is there.
            span.SetTag(Tags.GrpcPath, request.Path);
            if (request.Authority.Length > 0)
            {
                span.SetTag(Tags.GrpcAuthority, Encoding.Latin1.GetString(request.Authority));
            }

            span.SetTag(Tags.GrpcContentType, headers.GetValue("content-type")!);
            if (headers.GetValue("grpc-timeout") is { } grpcTimeout)
            {
                span.SetTag(Tags.GrpcTimeout, grpcTimeout);
            }
        }

        foreach (var tag in _config.CustomTags)
        {
            tag.Apply(span, headers);
        }

        // The route's custom tags come after the connection manager's: a route tag of the same name wins.
        if (stream.Route?.Tracing is { } routeTracing)
        {
            foreach (var tag in routeTracing.CustomTags)
            {
                tag.Apply(span, headers);
            }
        }

        span.SetTag(Tags.RequestSize, info.BytesReceived.ToString(CultureInfo.InvariantCulture));
        span.SetTag(Tags.ResponseSize, info.BytesSent.ToString(CultureInfo.InvariantCulture));
        SetCommonTags(span, info, info.ResponseCode, info.UpstreamHost, stream.ResponseHeaders?.Headers, stream.ResponseTrailers);
        span.Finish();
    }

    private void FinishUpstreamSpan(HttpStream stream, bool retried)
    {
        var span = _upstreamSpan!;
        _upstreamSpan = null;
        var info = stream.Info;
        span.SetTag(Tags.HttpProtocol, info.UpstreamProtocol ?? "-");

        // A retried attempt's own response is not kept: it ends with status 0 (an error), as an attempt without a response.
        SetCommonTags(span, info, retried ? 0 : info.ResponseCode, _upstreamHost,
            retried ? null : stream.ResponseHeaders?.Headers, retried ? null : stream.ResponseTrailers);
        _upstreamHost = null;
        span.Finish();
    }

    /// <summary>
    /// Envoy's setCommonTags: component, cluster, upstream address, status, response flags, the gRPC
    /// status of the response (trailers first, else headers: a trailers-only answer), error on 5xx,
    /// no response or a gRPC status other than OK.
    /// </summary>
    private static void SetCommonTags(Span span, StreamInfo info, int responseCode, Host? host, HttpHeaderMap? responseHeaders, HttpHeaderMap? responseTrailers)
    {
        span.SetTag(Tags.Component, Tags.Proxy);
        if (info.UpstreamCluster is { } cluster)
        {
            span.SetTag(Tags.UpstreamCluster, cluster.Info.Name);
            span.SetTag(Tags.UpstreamClusterName, cluster.Info.Name);
        }

        if (host is not null)
        {
            span.SetTag(Tags.UpstreamAddress, host.Address.ToString());
        }

        span.SetTag(Tags.HttpStatusCode, responseCode.ToString(CultureInfo.InvariantCulture));
        span.SetTag(Tags.ResponseFlags, info.ResponseFlags == ResponseFlags.None ? "-" : ResponseFlagNames.Format(info.ResponseFlags));
        if (responseTrailers?.GetValue("grpc-status") is not null)
        {
            SetGrpcResponseTags(span, responseTrailers);
        }
        else if (responseHeaders?.GetValue("grpc-status") is not null)
        {
            SetGrpcResponseTags(span, responseHeaders);
        }

        if (responseCode == 0 || responseCode >= 500 && responseCode < 600)
        {
            span.SetTag(Tags.Error, Tags.True);
        }
    }

    /// <summary>Envoy's addGrpcResponseTags: <c>grpc.status_code</c>, <c>grpc.message</c>, and error unless the status is OK (0).</summary>
    private static void SetGrpcResponseTags(Span span, HttpHeaderMap headers)
    {
        var status = headers.GetValue("grpc-status")!;
        span.SetTag(Tags.GrpcStatusCode, status);
        if (headers.GetValue("grpc-message") is { } message)
        {
            span.SetTag(Tags.GrpcMessage, message);
        }

        // A status that is not a number counts as not OK, as Envoy's InvalidCode.
        if (status != "0")
        {
            span.SetTag(Tags.Error, Tags.True);
        }
    }

    /// <summary>Envoy's buildUrl: <c>x-forwarded-proto://host</c> and the original path (before rewrites), cut to max_path_tag_length.</summary>
    private static string BuildUrl(HttpRequestHead request, int maxPathLength)
    {
        var headers = request.Headers;
        var path = headers.GetValue("x-envoy-original-path") ?? request.Path;
        if (path.Length > maxPathLength)
        {
            path = path[..maxPathLength];
        }

        var builder = new StringBuilder();
        builder.Append(headers.GetValue("x-forwarded-proto") ?? string.Empty).Append("://");
        builder.Append(Encoding.Latin1.GetString(request.Authority)).Append(path);
        return builder.ToString();
    }

    private static string NonEmptyOrDash(string? value) => string.IsNullOrEmpty(value) ? "-" : value;

    private static System.Net.IPAddress Unmap(System.Net.IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
