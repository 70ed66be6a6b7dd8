using System.Net;
using System.Net.Sockets;
using System.Text;
using Envoy.Config.Core.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Legate.Config;
using Legate.Server.Logging;
using Legate.Stats;
using RpcStatus = Google.Rpc.Status;

namespace Legate.Xds;

/// <summary>
/// xDS over REST (<c>api_type: REST</c>, Envoy's HttpSubscriptionImpl): every <c>refresh_delay</c>
/// the subscription's DiscoveryRequest (node, version_info of the last accepted response, its
/// nonce, the names for RDS/EDS/SDS, and the previous NACK's error_detail) is POSTed as JSON to
/// <c>/v3/discovery:&lt;type&gt;</c> on a host of the static cluster, bounded by
/// <c>request_timeout</c>. A 200 answer is a DiscoveryResponse in JSON that takes the same path as
/// a gRPC one (state of the world: absent LDS/CDS resources are removed, one invalid resource
/// rejects the response and the next request carries the NACK); 304 means nothing changed; any
/// other answer or a failed request counts update_failure and keeps the config in force. A name
/// added or removed (a new route table to fetch) makes the next request go at once.
/// </summary>
internal sealed class XdsRestSource : IDisposable
{
    private readonly XdsSourceSpec _spec;
    private readonly XdsSubscription _subscription;
    private readonly Node _node;
    private readonly Func<CancellationToken, ValueTask<EndPoint>> _resolve;
    private readonly Func<Legate.Tls.ClientTlsContext?> _tls;
    private readonly Logger _log;
    private readonly Counter _unknownFields;
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stop = new();
    private readonly HttpMessageInvoker _http;
    private RpcStatus? _nack;

    public XdsRestSource(XdsSourceSpec spec, XdsSubscription subscription, Node node, Func<CancellationToken, ValueTask<EndPoint>> resolve, Func<Legate.Tls.ClientTlsContext?> tls, StatsStore stats, Logger log)
    {
        _spec = spec;
        _subscription = subscription;
        _node = node;
        _resolve = resolve;
        _tls = tls;
        _log = log;
        _unknownFields = stats.Counter("server.dynamic_unknown_fields");
        _http = new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectCallback = ConnectAsync,
        }, disposeHandler: true);
        subscription.NamesChanged += _ => _wake.Release();
    }

    /// <summary>How many requests were sent (tests).</summary>
    public int Requests { get; private set; }

    public void Start()
    {
        _subscription.Start();
        _ = Task.Run(LoopAsync);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _subscription.Stop();
        _http.Dispose();
    }

    private async Task LoopAsync()
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                // A named type with nothing to ask for waits (an empty list would mean "everything").
                if (_subscription.Type.IsWildcard || _subscription.Names().Length > 0)
                {
                    await FetchAsync(token).ConfigureAwait(false);
                }

                using var delay = CancellationTokenSource.CreateLinkedTokenSource(token);
                delay.CancelAfter(_spec.RefreshDelay);
                try
                {
                    await _wake.WaitAsync(delay.Token).ConfigureAwait(false);
                    while (_wake.CurrentCount > 0)
                    {
                        await _wake.WaitAsync(token).ConfigureAwait(false);
                    }
                }
                catch (OperationCanceledException) when (!token.IsCancellationRequested)
                {
                    // refresh_delay elapsed.
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
        }
    }

    private async Task FetchAsync(CancellationToken token)
    {
        var request = new DiscoveryRequest
        {
            VersionInfo = _subscription.AcceptedVersion,
            Node = _node,
            TypeUrl = _subscription.Type.TypeUrl,
            ResponseNonce = _subscription.LastNonce,
            ErrorDetail = _nack,
        };
        request.ResourceNames.Add(_subscription.Names());
        var scheme = _tls() is null ? "http://" : "https://";
        using var message = new HttpRequestMessage(HttpMethod.Post, scheme + _spec.ClusterName + _subscription.Type.RestPath)
        {
            Content = new StringContent(JsonFormatter.Default.Format(request), Encoding.UTF8, "application/json"),
        };
        message.Headers.Host = _spec.ClusterName;

        string body;
        HttpStatusCode status;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(token))
        {
            timeout.CancelAfter(_spec.RequestTimeout);
            Requests++;
            try
            {
                using var response = await _http.SendAsync(message, timeout.Token).ConfigureAwait(false);
                status = response.StatusCode;
                body = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or SocketException or InvalidOperationException || (ex is OperationCanceledException && !token.IsCancellationRequested))
            {
                Fail(ex is OperationCanceledException ? $"no answer within request_timeout ({_spec.RequestTimeout.TotalMilliseconds:0} ms)" : ex.Message);
                return;
            }
        }

        if (status == HttpStatusCode.NotModified)
        {
            return;
        }

        if (status != HttpStatusCode.OK)
        {
            Fail($"HTTP {(int)status}");
            return;
        }

        var errors = new ConfigErrors();
        DiscoveryResponse? parsed = null;
        try
        {
            var options = new ConverterOptions { IgnoreUnknownFields = true, OnUnknownField = _ => _unknownFields.Inc() };
            parsed = new ProtoConverter(errors, options).Convert<DiscoveryResponse>(ConfigDocument.Parse(body, ConfigFormat.Json));
        }
        catch (ConfigException ex)
        {
            foreach (var error in ex.Errors)
            {
                errors.Add(error.Path, error.Message, error.Position);
            }
        }

        if (parsed is null || errors.HasErrors)
        {
            var details = "cannot parse the REST response: " + string.Join("; ", errors.Errors);
            _subscription.RejectUnparsable(details);
            _nack = new RpcStatus { Code = (int)Legate.Grpc.GrpcStatusCode.InvalidArgument, Message = details };
            return;
        }

        _subscription.LastNonce = parsed.Nonce;
        var resources = parsed.Resources.Select(any => XdsWireResource.Of(any, null, parsed.VersionInfo)).ToArray();
        var rejected = await _subscription.ProcessAsync(resources, [], parsed.VersionInfo, stateOfWorld: true, token).ConfigureAwait(false);
        // The next request ACKs (the accepted version) or NACKs (the previous version and the reasons).
        _nack = rejected.Count == 0 ? null : new RpcStatus { Code = (int)Legate.Grpc.GrpcStatusCode.InvalidArgument, Message = string.Join("; ", rejected) };
    }

    private void Fail(string reason)
    {
        _subscription.Stats.UpdateAttempt.Inc();
        _subscription.Failed();
        _log.Warn($"{_subscription.Type.ShortName}: REST fetch from '{_spec.ClusterName}' failed: {reason}");
    }

    /// <summary>Each connection goes to a host of the cluster (its load balancer picks), over TLS when the cluster has an UpstreamTlsContext.</summary>
    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var endpoint = await _resolve(cancellationToken).ConfigureAwait(false);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var stream = new NetworkStream(socket, ownsSocket: true);
        if (context.InitialRequestMessage.RequestUri?.Scheme != Uri.UriSchemeHttps || _tls() is not { } tls)
        {
            return stream;
        }

        var (ssl, _, failure) = await tls.HandshakeAsync(stream, tls.Sni, verifyDnsName: null, Legate.Tls.ClientTlsContext.Http11Alpn, cancellationToken).ConfigureAwait(false);
        return ssl ?? throw new IOException("TLS handshake with the REST server failed: " + failure);
    }
}
