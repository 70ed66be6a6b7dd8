using System.Net;
using Legate.Network;
using Microsoft.AspNetCore.Connections;
using Legate.Server.Logging;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace Legate.Grpc;

/// <summary>
/// A minimal gRPC server on Kestrel (cleartext HTTP/2 with prior knowledge, or h2 over TLS): a table of method path →
/// handler. Used by the bundled xDS management server and by tests as a gRPC peer. Each call
/// answers <c>application/grpc</c>, and its status goes in the trailers — or in the headers alone
/// (trailers-only) when the handler failed before sending anything. Unknown methods get
/// UNIMPLEMENTED.
/// </summary>
internal sealed class GrpcServer : IAsyncDisposable
{
    private readonly Dictionary<string, Func<GrpcServerCall, Task>> _methods = new(StringComparer.Ordinal);
    private readonly KestrelListener _kestrel;
    private readonly Logger _log;

    /// <param name="certificate">Serve h2 over TLS (ALPN h2) with this certificate and key; null: cleartext h2c.</param>
    public GrpcServer(IPEndPoint endpoint, Logger log, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null)
    {
        _log = log;
        _kestrel = new KestrelListener(endpoint, HttpProtocols.Http2, ioQueueCount: 1, log, certificate is null ? null : GrpcServerTls.Middleware(certificate));
    }

    /// <summary>The bound address, once started.</summary>
    public IPEndPoint BoundEndpoint => _kestrel.BoundEndpoint;

    public int MaxReceiveMessageBytes { get; init; } = 64 * 1024 * 1024;

    /// <summary>Adds a method (before <see cref="StartAsync"/>).</summary>
    public GrpcServer Map(string method, Func<GrpcServerCall, Task> handler)
    {
        _methods[method] = handler;
        return this;
    }

    /// <exception cref="BindException">The address could not be bound.</exception>
    public Task StartAsync(CancellationToken cancellationToken) => _kestrel.StartAsync(HandleAsync, cancellationToken);

    /// <summary>Stops accepting; calls still running are aborted when <paramref name="cancellationToken"/> fires.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => _kestrel.StopAsync(cancellationToken);

    public ValueTask DisposeAsync() => _kestrel.DisposeAsync();

    private async Task HandleAsync(HttpContext context)
    {
        var response = context.Response;
        if (!HttpMethods.IsPost(context.Request.Method)
            || context.Request.ContentType is not { } contentType
            || !contentType.StartsWith(GrpcProtocol.ContentType, StringComparison.OrdinalIgnoreCase))
        {
            response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            return;
        }

        // A streaming call's request body is quiet for as long as the client has nothing to say
        // (an xDS client between ACKs): Kestrel's minimum body data rate would abort it after its
        // 5 s grace period. gRPC has its own liveness (keepalive pings, deadlines).
        if (context.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } minimumRate)
        {
            minimumRate.MinDataRate = null;
        }

        response.ContentType = GrpcProtocol.ContentType;
        var path = context.Request.Path.Value ?? string.Empty;
        var call = new GrpcServerCall(context, MaxReceiveMessageBytes);
        GrpcStatusCode status;
        string message;
        if (!_methods.TryGetValue(path, out var handler))
        {
            (status, message) = (GrpcStatusCode.Unimplemented, $"unknown method {path}");
        }
        else
        {
            try
            {
                await handler(call).ConfigureAwait(false);
                (status, message) = (GrpcStatusCode.Ok, string.Empty);
            }
            catch (GrpcException ex)
            {
                (status, message) = (ex.Status, ex.Message);
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                // The client went away: nothing can be sent.
                return;
            }
            catch (Exception ex) when (ex is IOException or ConnectionResetException)
            {
                return;
            }
            catch (Exception ex)
            {
                _log.Error($"gRPC method {path} failed: {ex}");
                (status, message) = (GrpcStatusCode.Unknown, "the server failed: " + ex.Message);
            }
        }

        if (!response.HasStarted && status != GrpcStatusCode.Ok)
        {
            // Trailers-only: the status rides on the only HEADERS frame.
            response.Headers["grpc-status"] = ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (message.Length > 0)
            {
                response.Headers["grpc-message"] = GrpcProtocol.EncodeMessage(message);
            }

            return;
        }

        var trailers = context.Features.Get<IHttpResponseTrailersFeature>();
        if (trailers is null)
        {
            return;
        }

        trailers.Trailers["grpc-status"] = ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (message.Length > 0)
        {
            trailers.Trailers["grpc-message"] = GrpcProtocol.EncodeMessage(message);
        }
    }
}
