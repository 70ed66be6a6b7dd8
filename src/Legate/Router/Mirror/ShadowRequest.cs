using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Upstream;

namespace Legate.Router.Mirror;

/// <summary>
/// A fire-and-forget copy of one request to a shadow cluster (Envoy's ShadowWriter): the request
/// head as it goes upstream (authority suffixed <c>-shadow</c>) and its body, sent once the
/// downstream request is complete. Its response is read and dropped; nothing about it (slow,
/// failing, hanging) reaches the main request, which never waits for it. The body is copied up to
/// the buffer limit; a larger request is not mirrored (<c>retry_or_shadow_abandoned</c>).
/// </summary>
internal sealed class ShadowRequest
{
    private static readonly ConditionalWeakTable<Cluster, HttpMessageInvoker> s_clients = new();

    private readonly Cluster _cluster;
    private readonly HttpRequestMessage _request;
    private readonly TimeSpan _timeout;
    private readonly long _bufferLimit;
    private ArrayBufferWriter<byte>? _body;
    private bool _abandoned;

    private ShadowRequest(Cluster cluster, HttpRequestMessage request, TimeSpan timeout, long bufferLimit)
    {
        _cluster = cluster;
        _request = request;
        _timeout = timeout;
        _bufferLimit = bufferLimit;
    }

    /// <summary>
    /// Starts shadowing <paramref name="head"/> to the policy's cluster, or null (not sampled, no
    /// such cluster, no healthy host). With <paramref name="endStream"/> it is sent at once.
    /// </summary>
    public static ShadowRequest? Begin(MirrorPolicy policy, HttpStream stream, HttpRequestHead head, bool endStream, ClusterManager clusters, TimeSpan timeout)
    {
        if (!policy.Sampled(stream.Config.Runtime?.Snapshot, Http.RouteTable.StreamRandomValue(head.Headers)))
        {
            return null;
        }

        var name = policy.ClusterHeader is { } header ? head.Headers.GetValue(header) ?? string.Empty : policy.Cluster;
        var cluster = name.Length == 0 ? null : clusters.Find(name);
        if (cluster?.LoadBalancer.ChooseHost(null) is not { } host)
        {
            stream.Config.Log.Debug($"shadow of {stream} not sent: cluster '{name}' {(cluster is null ? "not found" : "has no healthy host")}");
            return null;
        }

        var http2 = cluster.Info.Protocol == UpstreamProtocol.Http2;
        var target = new Uri($"http://{Network.SocketAddresses.Format(host.Address)}{head.Path}", new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true });
        var request = new HttpRequestMessage(HttpMethod.Parse(head.Method), target)
        {
            Version = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

        var contentHeaders = new List<(string, string)>();
        foreach (var field in head.Headers)
        {
            switch (field.Known)
            {
                case KnownHeader.Connection or KnownHeader.KeepAlive or KnownHeader.ProxyConnection or KnownHeader.TransferEncoding
                    or KnownHeader.Upgrade or KnownHeader.Expect or KnownHeader.ContentLength or KnownHeader.Host:
                    continue;
            }

            if (!request.Headers.TryAddWithoutValidation(field.Name, field.Value))
            {
                contentHeaders.Add((field.Name, field.Value));
            }
        }

        var authority = stream.AuthorityString();
        request.Headers.Host = policy.AppendShadowSuffix ? MirrorPolicy.ShadowAuthority(authority) : authority;
        var shadow = new ShadowRequest(cluster, request, timeout, stream.DecoderBufferLimit);
        shadow._contentHeaders = contentHeaders;
        if (stream.Trace is { } trace)
        {
            // As Envoy's async client for shadows: a child span "mirror" whose context the shadow carries.
            shadow._span = trace.StartShadowSpan(policy.TraceSampled);
            shadow._host = host;
            var context = new HttpHeaderMap();
            shadow._span.InjectContext(context);
            foreach (var field in context)
            {
                request.Headers.Remove(field.Name);
                request.Headers.TryAddWithoutValidation(field.Name, field.Value);
            }
        }
        if (endStream)
        {
            shadow.Send();
        }

        return shadow;
    }

    private List<(string Name, string Value)> _contentHeaders = [];
    private Tracing.Span? _span;
    private Host? _host;

    /// <summary>A request body piece (copied: the caller's buffer is reused).</summary>
    public void Append(in ReadOnlySequence<byte> data)
    {
        if (_abandoned || data.IsEmpty)
        {
            return;
        }

        _body ??= new ArrayBufferWriter<byte>();
        if (_body.WrittenCount + data.Length > _bufferLimit)
        {
            _abandoned = true;
            _body = null;
            _cluster.Info.Stats.RetryOrShadowAbandoned.Inc();
            return;
        }

        foreach (var segment in data)
        {
            _body.Write(segment.Span);
        }
    }

    /// <summary>The downstream request is complete: the shadow goes out (unless abandoned).</summary>
    public void Send()
    {
        if (_abandoned)
        {
            _request.Dispose();
            return;
        }

        _abandoned = true;
        if (_body is { } body || _contentHeaders.Count > 0)
        {
            var content = new ByteArrayContent(_body is null ? [] : _body.WrittenSpan.ToArray());
            foreach (var (name, value) in _contentHeaders)
            {
                content.Headers.TryAddWithoutValidation(name, value);
            }

            _request.Content = content;
        }

        _ = SendAsync();
    }

    /// <summary>The main request ended before its body did: the shadow is not sent.</summary>
    public void Abandon()
    {
        if (!_abandoned)
        {
            _abandoned = true;
            _request.Dispose();
        }
    }

    private async Task SendAsync()
    {
        // Off the request's own flow: the main request never waits for any of this.
        await Task.Yield();
        var stats = _cluster.Info.Stats;
        var start = Stopwatch.GetTimestamp();
        stats.UpstreamRqTotal.Inc();
        stats.UpstreamRqActive.Inc();
        var status = 0;
        using var cancel = _timeout > TimeSpan.Zero ? new CancellationTokenSource(_timeout) : new CancellationTokenSource();
        try
        {
            var client = s_clients.GetValue(_cluster, static cluster => CreateClient(cluster));
            using var response = await client.SendAsync(_request, cancel.Token).ConfigureAwait(false);
            await response.Content.CopyToAsync(Stream.Null, cancel.Token).ConfigureAwait(false);
            var code = (int)response.StatusCode;
            if (code is >= 100 and < 600)
            {
                stats.UpstreamRqXx[(code / 100) - 1].Inc();
            }

            stats.UpstreamRqCompleted.Inc();
            stats.UpstreamRqTime.Record((long)Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            status = code;
        }
        catch (OperationCanceledException)
        {
            stats.UpstreamRqTimeout.Inc();
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            stats.UpstreamRqRxReset.Inc();
        }
        finally
        {
            stats.UpstreamRqActive.Dec();
            _request.Dispose();
            if (_span is { } span)
            {
                Tracing.ActiveTrace.FinishShadowSpan(span, _cluster, _host, status, _request.Version);
            }
        }
    }

    /// <summary>One client per shadow cluster, its own connections (a hanging shadow host cannot hold the main request's pool).</summary>
    private static HttpMessageInvoker CreateClient(Cluster cluster) => new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
        AutomaticDecompression = DecompressionMethods.None,
        ConnectTimeout = cluster.ConnectTimeout,
        PooledConnectionIdleTimeout = cluster.Info.IdleTimeout,
    });
}
