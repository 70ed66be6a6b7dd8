using System.IO.Pipelines;
using System.Net;
using Legate.Http.Http1;
using Legate.Network;
using Microsoft.AspNetCore.Connections;

namespace Legate.Upstream.ConnectionPool;

/// <summary>
/// One HTTP/1.1 connection to an upstream host (Envoy's CodecClient for HTTP/1): the pipes, the
/// response parser state, and a timer the router uses for its request timeout. Carries one request
/// at a time; the pool hands it out again when the previous exchange ended cleanly.
/// </summary>
internal sealed class Http1UpstreamConnection : IAsyncDisposable
{
    private readonly ConnectionContext _connection;
    private readonly DeadlineTimer _timer;
    private readonly DeadlineTimer _idleTimer;
    private Action<Http1UpstreamConnection, object>? _onIdle;
    private object? _idleState;
    private readonly ClusterStats _stats;
    private int _timedOut;
    private int _closed;

    public Http1UpstreamConnection(Host host, IPEndPoint address, ConnectionContext connection, ClusterStats stats, TimeProvider time)
        : this(host, address, connection, stats, time, Http1ParserOptions.ClientDefaults)
    {
    }

    /// <param name="options">The response parser's options (the cluster's enable_trailers).</param>
    public Http1UpstreamConnection(Host host, IPEndPoint address, ConnectionContext connection, ClusterStats stats, TimeProvider time, Http1ParserOptions options)
    {
        Host = host;
        Address = address;
        LocalAddress = connection.LocalEndPoint as IPEndPoint;
        Tls = (connection as Legate.Tls.TlsConnection)?.Session;
        _connection = connection;
        _stats = stats;
        Input = connection.Transport.Input;
        Output = connection.Transport.Output;
        _timer = new DeadlineTimer(time, static state => ((Http1UpstreamConnection)state).OnTimeout(), this);
        _idleTimer = new DeadlineTimer(time, static state => ((Http1UpstreamConnection)state).OnIdleTimeout(), this);
        Parser = new Http1ResponseParser(options);
        BodyReader = new Http1BodyReader(options, isRequest: false);
    }

    public Host Host { get; }

    /// <summary>The address connected to.</summary>
    public IPEndPoint Address { get; }

    /// <summary>Our end of the connection (<c>%UPSTREAM_LOCAL_ADDRESS%</c>).</summary>
    public IPEndPoint? LocalAddress { get; }

    /// <summary>The TLS session when the cluster originates TLS (<c>%UPSTREAM_PEER_*%</c>, <c>%UPSTREAM_TLS_*%</c>).</summary>
    public Legate.Tls.TlsSessionInfo? Tls { get; }

    public PipeReader Input { get; }

    public PipeWriter Output { get; }

    public Http1ResponseParser Parser { get; }

    public Http1BodyReader BodyReader { get; }

    public HttpResponseHead ResponseHead { get; } = new();

    /// <summary>Requests sent on this connection so far.</summary>
    public int Requests { get; set; }

    /// <summary>When it went back to the pool (a <see cref="Legate.Network.EventClock"/> timestamp).</summary>
    public long IdleSince { get; set; }

    /// <summary>The pool's drain generation when this connection was opened: an older one is not reused.</summary>
    public int PoolGeneration { get; init; }

    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>Called once when the connection closes (the pool gives back its connection slot).</summary>
    public Action? Closed { get; set; }

    /// <summary>True once the timer armed by <see cref="ArmTimeout"/> fired (the pending read was cancelled).</summary>
    public bool TimedOut => Volatile.Read(ref _timedOut) != 0;

    public void ArmTimeout(TimeSpan timeout)
    {
        Volatile.Write(ref _timedOut, 0);
        _timer.Set(timeout);
    }

    public void DisarmTimeout() => _timer.Clear();

    /// <summary>While pooled: <paramref name="onIdle"/> runs once <paramref name="timeout"/> passes without a request.</summary>
    public void ArmIdleTimeout(TimeSpan timeout, Action<Http1UpstreamConnection, object> onIdle, object state)
    {
        _onIdle = onIdle;
        _idleState = state;
        _idleTimer.Set(timeout);
    }

    public void DisarmIdleTimeout() => _idleTimer.Clear();

    /// <summary>Wakes a pending read (it returns cancelled): the request timed out or was reset.</summary>
    public void CancelPendingRead() => Input.CancelPendingRead();

    /// <summary>
    /// Before reuse: true when the idle connection is still open and the upstream sent nothing
    /// while it was idle (bytes or a close then mean it cannot carry a new request).
    /// </summary>
    public bool IsReusable()
    {
        if (IsClosed)
        {
            return false;
        }

        if (Input.TryRead(out var result))
        {
            var usable = !result.IsCompleted && !result.IsCanceled && result.Buffer.IsEmpty;
            Input.AdvanceTo(result.Buffer.Start);
            return usable;
        }

        return true;
    }

    /// <summary>Closes the connection (idempotent).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        _stats.UpstreamCxDestroy.Inc();
        _stats.UpstreamCxActive.Dec();
        Host.ConnectionClosed();
        Closed?.Invoke();
        await _timer.DisposeAsync().ConfigureAwait(false);
        await _idleTimer.DisposeAsync().ConfigureAwait(false);
        try
        {
            _connection.Abort();
            await Input.CompleteAsync().ConfigureAwait(false);
            await Output.CompleteAsync().ConfigureAwait(false);
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or ConnectionAbortedException)
        {
            // Closing a connection that already broke.
        }
    }

    private void OnIdleTimeout()
    {
        if (_onIdle is { } onIdle && !IsClosed)
        {
            onIdle(this, _idleState!);
        }
    }

    private void OnTimeout()
    {
        Volatile.Write(ref _timedOut, 1);
        Input.CancelPendingRead();
    }
}
