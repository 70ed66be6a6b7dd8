using System.Net;
using System.Runtime.ExceptionServices;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Legate.Tests.Harness;

/// <summary>What a <see cref="ScriptedUpstream"/> speaks. Cleartext Kestrel serves HTTP/1.1 or h2c on a port, never both.</summary>
internal enum UpstreamProtocols
{
    /// <summary>HTTP/1.1 on one port.</summary>
    Http1,

    /// <summary>HTTP/2 with prior knowledge (h2c, no upgrade) on one port.</summary>
    Http2,

    /// <summary>Two ports: <see cref="ScriptedUpstream.Http1Endpoint"/> and <see cref="ScriptedUpstream.Http2Endpoint"/>.</summary>
    Both,
}

/// <summary>
/// A real upstream server for end-to-end tests: Kestrel on <c>127.0.0.1</c>, port 0, answering as
/// its <see cref="UpstreamScript"/> says and logging every request it receives in <see cref="Log"/>.
/// Each instance is independent, so parallel tests are safe. Dispose stops it at once (in-flight
/// requests are aborted).
/// </summary>
/// <example><code>
/// await using var upstream = await ScriptedUpstream.StartAsync(
///     new UpstreamScript(UpstreamResponse.Echo()).OnPath("/health", UpstreamResponse.Text("ok")));
/// // … point a cluster at upstream.Endpoint, send through the proxy …
/// var seen = await upstream.Log.WaitForRequestsAsync(1);
/// Assert.Equal("/a%2Fb?x=1", seen[0].RawTarget);
/// </code></example>
internal sealed class ScriptedUpstream : IAsyncDisposable
{
    /// <summary>Body bytes written between flushes when nothing else asks for a flush.</summary>
    private const int WriteBlock = 64 * 1024;

    private readonly KestrelServer _server;
    private readonly ListenOptions? _http1;
    private readonly ListenOptions? _http2;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stopping = new();
    private long _startedAt;
    private bool _disposed;

    private ScriptedUpstream(UpstreamScript script, UpstreamProtocols protocols, TimeProvider time, Action<KestrelServerOptions>? configure, UpstreamTls? tls)
    {
        Script = script;
        Protocols = protocols;
        _time = time;
        Tls = tls;

        var options = new KestrelServerOptions { AddServerHeader = false };
        var limits = options.Limits;
        limits.MaxRequestBodySize = null;
        limits.MinRequestBodyDataRate = null;
        limits.MinResponseDataRate = null;
        limits.MaxRequestLineSize = 1024 * 1024;
        limits.MaxRequestHeadersTotalSize = 1024 * 1024;
        limits.MaxRequestHeaderCount = 10_000;
        limits.Http2.MaxRequestHeaderFieldSize = 1024 * 1024;
        if (protocols is UpstreamProtocols.Http1 or UpstreamProtocols.Both)
        {
            _http1 = Listen(options, HttpProtocols.Http1, tls);
        }

        if (protocols is UpstreamProtocols.Http2 or UpstreamProtocols.Both)
        {
            _http2 = Listen(options, HttpProtocols.Http2, tls);
        }

        // Kestrel does not know our middleware terminated TLS, so it would refuse :scheme https on h2.
        options.AllowAlternateSchemes = tls is not null;

        configure?.Invoke(options);

        // A write buffer of one byte makes every flush wait until the socket has taken the bytes, so
        // a reset after a flush cannot overtake what was flushed (Kestrel's abort drops unsent output).
        var transport = new SocketTransportFactory(
            Options.Create(new SocketTransportOptions { MaxWriteBufferSize = 1 }),
            NullLoggerFactory.Instance);
        _server = new KestrelServer(Options.Create(options), transport, NullLoggerFactory.Instance);
    }

    /// <summary>The rules it answers by; can be changed while it runs.</summary>
    public UpstreamScript Script { get; }

    /// <summary>The TLS it terminates (handshakes recorded there), or null for cleartext.</summary>
    public UpstreamTls? Tls { get; }

    /// <summary>Every request received, with concurrency counters and waits.</summary>
    public UpstreamRequestLog Log { get; } = new();

    public UpstreamProtocols Protocols { get; }

    /// <summary>The HTTP/1.1 endpoint, or the h2c one when that is all it serves.</summary>
    public IPEndPoint Endpoint => _http1 is not null ? Http1Endpoint : Http2Endpoint;

    public int Port => Endpoint.Port;

    /// <summary>e.g. <c>http://127.0.0.1:41234/</c>, for <see cref="Endpoint"/>.</summary>
    public Uri Uri => UriOf(Endpoint);

    public IPEndPoint Http1Endpoint => BoundEndpoint(_http1, "HTTP/1.1");

    public IPEndPoint Http2Endpoint => BoundEndpoint(_http2, "h2c");

    public Uri Http1Uri => UriOf(Http1Endpoint);

    public Uri Http2Uri => UriOf(Http2Endpoint);

    /// <summary>Starts an upstream answering by <paramref name="script"/> (200, empty body, when null); it is accepting on return.</summary>
    /// <param name="time">Clock for scripted delays and <see cref="UpstreamRequest.ArrivedAt"/>; the system clock when null.</param>
    /// <param name="configure">Last word on Kestrel's options (e.g. <c>Limits.Http2.MaxStreamsPerConnection</c>).</param>
    public static async Task<ScriptedUpstream> StartAsync(
        UpstreamScript? script = null,
        UpstreamProtocols protocols = UpstreamProtocols.Http1,
        TimeProvider? time = null,
        Action<KestrelServerOptions>? configure = null,
        UpstreamTls? tls = null)
    {
        var upstream = new ScriptedUpstream(script ?? new UpstreamScript(), protocols, time ?? TimeProvider.System, configure, tls);
        try
        {
            upstream._startedAt = upstream._time.GetTimestamp();
            await upstream._server.StartAsync(new Application(upstream.HandleAsync), CancellationToken.None);
            return upstream;
        }
        catch
        {
            await upstream.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts an upstream that answers every request with <paramref name="response"/>.</summary>
    public static Task<ScriptedUpstream> StartAsync(UpstreamResponse response, UpstreamProtocols protocols = UpstreamProtocols.Http1) =>
        StartAsync(new UpstreamScript(response), protocols);

    /// <summary>The request target exactly as it came on the wire (<c>/a%2Fb?x=1</c>).</summary>
    public static string RawTarget(HttpRequest request) =>
        request.HttpContext.Features.Get<IHttpRequestFeature>()?.RawTarget ?? throw new InvalidOperationException("no IHttpRequestFeature");

    /// <summary>The raw target before any <c>?</c>.</summary>
    public static string RawPath(HttpRequest request) => RawTarget(request).Split('?', 2)[0];

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _stopping.CancelAsync();

        // An already cancelled token: abort in-flight requests rather than wait for them.
        await _server.StopAsync(new CancellationToken(canceled: true));
        _server.Dispose();
        _stopping.Dispose();
    }

    private static ListenOptions Listen(KestrelServerOptions options, HttpProtocols protocols, UpstreamTls? tls)
    {
        ListenOptions? bound = null;
        options.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.Protocols = protocols;
            if (tls is not null)
            {
                listen.Use(next => connection => tls.ServeAsync(connection, next, protocols == HttpProtocols.Http2));
            }

            bound = listen;
        });

        // Kestrel writes the bound port back into these options when it starts.
        return bound ?? throw new InvalidOperationException("Kestrel did not call the listen callback");
    }

    private static Uri UriOf(IPEndPoint endpoint) => new($"http://{endpoint.Address}:{endpoint.Port}/");

    private IPEndPoint BoundEndpoint(ListenOptions? listen, string what) =>
        listen?.IPEndPoint ?? throw new InvalidOperationException($"this upstream does not serve {what} (protocols: {Protocols})");

    private async Task HandleAsync(HttpContext context)
    {
        var arrivedAt = _time.GetElapsedTime(_startedAt);
        var (sequence, concurrent) = Log.Enter();
        try
        {
            using var aborted = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
            context.RequestAborted = aborted.Token;
            try
            {
                await ServeAsync(context, sequence, concurrent, arrivedAt, aborted.Token);
            }
            catch (Exception) when (aborted.IsCancellationRequested)
            {
                // The client went away or the upstream is stopping: nothing to report, but never let
                // Kestrel finish the response normally (it would send a 200 for a cut-short script).
                context.Abort();
            }
            catch (Exception ex)
            {
                Log.AddError(ex);
                if (context.Response.HasStarted)
                {
                    context.Abort();
                }
                else
                {
                    context.Response.Clear();
                    context.Response.StatusCode = StatusCodes.Status500InternalServerError;
                    await context.Response.WriteAsync($"scripted upstream: {ex.GetType().Name}: {ex.Message}\n", aborted.Token);
                }
            }
        }
        finally
        {
            Log.Exit();
        }
    }

    private async Task ServeAsync(HttpContext context, long sequence, int concurrent, TimeSpan arrivedAt, CancellationToken aborted)
    {
        var request = context.Request;

        // A throwing predicate still gets its request logged, then fails the script.
        UpstreamResponse? chosen = null;
        ExceptionDispatchInfo? selectError = null;
        try
        {
            chosen = Script.Select(request);
        }
        catch (Exception ex)
        {
            selectError = ExceptionDispatchInfo.Capture(ex);
        }

        var buffer = chosen?.BufferRequestBody ?? true;
        var (body, complete) = buffer ? await ReadBodyAsync(request, aborted) : ([], false);
        var logged = new UpstreamRequest
        {
            Sequence = sequence,
            Method = request.Method,
            RawTarget = RawTarget(request),
            Protocol = request.Protocol,
            Headers = Copy(request.Headers),
            Trailers = complete && request.SupportsTrailers() && request.CheckTrailersAvailable()
                ? Copy(context.Features.GetRequiredFeature<IHttpRequestTrailersFeature>().Trailers)
                : new Dictionary<string, string[]>(),
            Body = body,
            BodyComplete = complete,
            RemoteEndpoint = new IPEndPoint(context.Connection.RemoteIpAddress ?? IPAddress.None, context.Connection.RemotePort),
            ConnectionId = context.Connection.Id,
            ArrivedAt = arrivedAt,
            ConcurrentOnArrival = concurrent,
        };
        Log.Add(logged);
        selectError?.Throw();
        if (buffer && !complete)
        {
            return; // the client went away mid-body
        }

        if (buffer)
        {
            request.Body = new MemoryStream(body, writable: false);
        }

        await RespondAsync(context, chosen!, logged, aborted);
    }

    private static async Task<(byte[] Body, bool Complete)> ReadBodyAsync(HttpRequest request, CancellationToken aborted)
    {
        var body = new MemoryStream();
        try
        {
            await request.Body.CopyToAsync(body, aborted);
            return (body.ToArray(), true);
        }
        catch (Exception ex) when (ex is IOException or Microsoft.AspNetCore.Http.BadHttpRequestException or OperationCanceledException)
        {
            return (body.ToArray(), false);
        }
    }

    private async Task RespondAsync(HttpContext context, UpstreamResponse script, UpstreamRequest logged, CancellationToken aborted)
    {
        if (script.Delay > TimeSpan.Zero)
        {
            await Task.Delay(script.Delay, _time, aborted);
        }

        if (script.HoldUntil is { } hold)
        {
            await hold.WaitAsync(aborted);
        }

        if (script.CloseWithoutResponse)
        {
            Reset(context, script);
            return;
        }

        if (script.Handler is { } handler)
        {
            await handler(context);
            return;
        }

        var response = context.Response;
        if (script.Trailers.Count > 0 && !response.SupportsTrailers())
        {
            throw new InvalidOperationException($"Kestrel cannot send trailers over {logged.Protocol}; script them for HTTP/2 requests only");
        }

        response.StatusCode = script.Status;
        foreach (var (name, value) in script.Headers)
        {
            response.Headers.Append(name, value);
        }

        var fixedBody = script.EchoRequest ? EchoedRequest.Serialize(logged) : script.Body;
        var mayHaveBody = script.Status is >= 200 and not 204 and not 304;
        var length = mayHaveBody ? fixedBody?.Length ?? script.BodySize ?? 0 : 0;
        if (mayHaveBody && (script.ContentLength ?? script.Chunks == 1) && response.ContentLength is null)
        {
            response.ContentLength = length;
        }

        // Where to reset: -1 never; 0 right after the head; else after that many body bytes (at most all of them).
        var resetAt = script.ResetAfterHeaders ? 0 : script.ResetAfterBodyBytes is { } n ? Math.Min(n, length) : -1;
        await response.StartAsync(aborted);
        await response.BodyWriter.FlushAsync(aborted);

        var chunks = (int)Math.Min(script.Chunks, length);
        long sent = 0;
        for (var i = 0; i < chunks && sent != resetAt; i++)
        {
            if (i > 0 && script.ChunkDelay > TimeSpan.Zero)
            {
                await Task.Delay(script.ChunkDelay, _time, aborted);
            }

            if (script.ChunkGate is { } gate)
            {
                await gate(i).WaitAsync(aborted);
            }

            var end = length * (i + 1) / chunks;
            if (resetAt >= 0)
            {
                end = Math.Min(end, resetAt);
            }

            await WriteAsync(response.BodyWriter, fixedBody, sent, end, aborted);
            await response.BodyWriter.FlushAsync(aborted);
            sent = end;
        }

        if (resetAt >= 0)
        {
            Reset(context, script);
            return;
        }

        foreach (var (name, value) in script.Trailers)
        {
            response.AppendTrailer(name, value);
        }

        await response.CompleteAsync();
    }

    /// <summary>Writes body bytes [<paramref name="from"/>, <paramref name="to"/>) of the fixed body, or of the generated one when null.</summary>
    private static async Task WriteAsync(System.IO.Pipelines.PipeWriter writer, byte[]? fixedBody, long from, long to, CancellationToken aborted)
    {
        for (var offset = from; offset < to; offset += WriteBlock)
        {
            var size = (int)Math.Min(WriteBlock, to - offset);
            if (fixedBody is not null)
            {
                await writer.WriteAsync(fixedBody.AsMemory((int)offset, size), aborted);
            }
            else
            {
                UpstreamResponse.FillGenerated(writer.GetSpan(size)[..size], offset);
                writer.Advance(size);
                await writer.FlushAsync(aborted);
            }
        }
    }

    /// <summary>HTTP/1.1: close the connection. HTTP/2: reset the stream, with the scripted error code if any.</summary>
    private static void Reset(HttpContext context, UpstreamResponse script)
    {
        if (script.ResetErrorCode is { } code && context.Features.Get<IHttpResetFeature>() is { } reset)
        {
            reset.Reset(code);
        }
        else
        {
            context.Abort();
        }
    }

    private static Dictionary<string, string[]> Copy(IHeaderDictionary headers)
    {
        var copy = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, values) in headers)
        {
            copy[name] = values.Select(v => v ?? "").ToArray();
        }

        return copy;
    }

    /// <summary>The minimal <see cref="IHttpApplication{TContext}"/>: a context per request, then the delegate.</summary>
    private sealed class Application(RequestDelegate app) : IHttpApplication<HttpContext>
    {
        public HttpContext CreateContext(IFeatureCollection contextFeatures) => new DefaultHttpContext(contextFeatures);

        public Task ProcessRequestAsync(HttpContext context) => app(context);

        public void DisposeContext(HttpContext context, Exception? exception)
        {
        }
    }
}
