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
/// The host's cluster (for an aggregate, the listed cluster its balancer chose) supplies the
/// connections: its protocol, connect timeout and transport socket (UpstreamTlsContext, per host
/// with transport_socket_matches).
/// </summary>
internal sealed class ShadowRequest
{
    private static readonly ConditionalWeakTable<Cluster, HttpMessageInvoker> s_clients = new();

    /// <summary>The host a shadow goes to: its connection is made by <see cref="ConnectAsync"/> (TCP, then the host's TLS).</summary>
    private static readonly HttpRequestOptionsKey<Host> HostOption = new("legate.shadow_host");

    private readonly Cluster _cluster;
    private readonly Cluster _target;
    private readonly HttpRequestMessage _request;
    private readonly TimeSpan _timeout;
    private readonly long _bufferLimit;
    private ArrayBufferWriter<byte>? _body;
    private bool _abandoned;

    private ShadowRequest(Cluster cluster, Cluster target, HttpRequestMessage request, TimeSpan timeout, long bufferLimit)
    {
        _cluster = cluster;
        _target = target;
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
        if (!policy.Sampled(stream.Config.Runtime?.Snapshot, stream.Info.RandomValue))
        {
            return null;
        }

        var name = policy.ClusterHeader is { } header ? head.Headers.GetValue(header) ?? string.Empty : policy.Cluster;
        var cluster = name.Length == 0 ? null : clusters.Find(name);
        Cluster? chosen = null;
        if (cluster?.ChooseHost(null, out chosen) is not { } host || chosen is null)
        {
            stream.Config.Log.Debug($"shadow of {stream} not sent: cluster '{name}' {(cluster is null ? "not found" : "has no healthy host")}");
            return null;
        }

        var http2 = chosen.Info.Protocol == UpstreamProtocol.Http2;
        // Over TLS the scheme is https (:scheme as Envoy sends it); ConnectAsync returns the stream already authenticated.
        var scheme = chosen.Info.TlsFor(host) is null ? "http://" : "https://";
        var target = new Uri($"{scheme}{Network.SocketAddresses.Format(host.Address)}{head.Path}", new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true });
        var request = new HttpRequestMessage(HttpMethod.Parse(head.Method), target)
        {
            Version = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Options.Set(HostOption, host);

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
        var shadow = new ShadowRequest(cluster, chosen, request, timeout, stream.DecoderBufferLimit);
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
        // As the router counts: requests in flight on the host's cluster, their outcome on the shadow policy's.
        var stats = _cluster.Info.Stats;
        var targetStats = _target.Info.Stats;
        var start = Stopwatch.GetTimestamp();
        targetStats.UpstreamRqTotal.Inc();
        targetStats.UpstreamRqActive.Inc();
        var status = 0;
        using var cancel = _timeout > TimeSpan.Zero ? new CancellationTokenSource(_timeout) : new CancellationTokenSource();
        try
        {
            var client = s_clients.GetValue(_target, static cluster => CreateClient(cluster));
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
            targetStats.UpstreamRqActive.Dec();
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
        ConnectCallback = (context, token) => ConnectAsync(cluster, context, token),
    });

    /// <summary>TCP to the shadow's host, its cluster's upstream PROXY header (if any), then its UpstreamTlsContext for that host (if any), within connect_timeout.</summary>
    private static async ValueTask<Stream> ConnectAsync(Cluster cluster, SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var options = context.InitialRequestMessage.Options;
        var address = options.TryGetValue(HostOption, out var host) ? host.Address : new IPEndPoint(IPAddress.Parse(context.DnsEndPoint.Host), context.DnsEndPoint.Port);
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(address, cancellationToken).ConfigureAwait(false);
            if (cluster.Info.ProxyProtocol is { } proxyProtocol)
            {
                // As Envoy's shadows (its async client has no downstream connection): the upstream
                // PROXY header names the shadow connection's own addresses (v1) or is LOCAL (v2),
                // as for health checks; before the TLS handshake, like every upstream connection.
                await proxyProtocol.SendAsync(socket, null, null, address, cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        Stream connection = new NetworkStream(socket, ownsSocket: true);
        if (host is not null && cluster.Info.TlsFor(host) is { } tls)
        {
            var info = cluster.Info;
            var name = context.InitialRequestMessage.Headers.Host is { Length: > 0 } authority ? HostWithoutPort(authority) : null;
            var serverName = info.AutoSni && name is not null ? name : tls.Sni;
            var verifyName = info.AutoSanValidation ? name : null;
            var alpn = info.Protocol == UpstreamProtocol.Http2 ? Tls.ClientTlsContext.Http2Alpn : Tls.ClientTlsContext.Http11Alpn;
            var (ssl, _, failure) = await tls.HandshakeAsync(connection, serverName, verifyName, alpn, cancellationToken).ConfigureAwait(false);
            connection = ssl ?? throw new IOException(failure ?? "TLS handshake failed");
        }

        return connection;
    }

    private static string HostWithoutPort(string authority)
    {
        if (authority.StartsWith('['))
        {
            var end = authority.IndexOf(']', StringComparison.Ordinal);
            return end > 0 ? authority[1..end] : authority;
        }

        var colon = authority.LastIndexOf(':');
        return colon > 0 ? authority[..colon] : authority;
    }
}
