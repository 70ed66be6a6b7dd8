using System.Net;
using System.Text;

namespace Legate.Tests.Harness;

/// <summary>One request as a <see cref="ScriptedUpstream"/> received it: what the proxy put on the wire.</summary>
internal sealed record UpstreamRequest
{
    /// <summary>1 for the first request the upstream saw, then 2, 3, … in order of arrival.</summary>
    public required long Sequence { get; init; }

    public required string Method { get; init; }

    /// <summary>The request target exactly as sent (<c>/a%2Fb?x=1</c>): nothing decoded or normalised.</summary>
    public required string RawTarget { get; init; }

    /// <summary><c>HTTP/1.1</c> or <c>HTTP/2</c>.</summary>
    public required string Protocol { get; init; }

    /// <summary>Header name (any case) to its values, one per header line or HPACK field as received.</summary>
    public required IReadOnlyDictionary<string, string[]> Headers { get; init; }

    /// <summary>Request trailers (HTTP/2, or HTTP/1.1 chunked), empty when there were none.</summary>
    public required IReadOnlyDictionary<string, string[]> Trailers { get; init; }

    /// <summary>The request body; empty when the rule did not buffer it (<see cref="UpstreamResponse.BufferRequestBody"/>).</summary>
    public required byte[] Body { get; init; }

    /// <summary>
    /// False when the body was not read to its end: the client went away mid-body, or the rule did not
    /// buffer it. After a client abort <see cref="Body"/> holds only what Kestrel handed over before
    /// the read failed; bytes it still held when the connection ended are lost (often all of them).
    /// </summary>
    public required bool BodyComplete { get; init; }

    /// <summary>The proxy's side of the connection (its port tells connections apart).</summary>
    public required IPEndPoint RemoteEndpoint { get; init; }

    /// <summary>Kestrel's id for the connection the request came on.</summary>
    public required string ConnectionId { get; init; }

    /// <summary>When the request head arrived, measured from the upstream's start on its <see cref="TimeProvider"/>.</summary>
    public required TimeSpan ArrivedAt { get; init; }

    /// <summary>Requests in flight at the upstream when this one arrived, this one included.</summary>
    public required int ConcurrentOnArrival { get; init; }

    /// <summary>The target before any <c>?</c>, still raw.</summary>
    public string Path => RawTarget.Split('?', 2)[0];

    /// <summary>The target from its <c>?</c> on (<c>?x=1</c>), or empty.</summary>
    public string Query => RawTarget.IndexOf('?', StringComparison.Ordinal) is var i and >= 0 ? RawTarget[i..] : "";

    public string BodyText => Encoding.UTF8.GetString(Body);

    /// <summary>All values of header <paramref name="name"/> joined with <c>", "</c>, or null when absent.</summary>
    public string? Header(string name) => Headers.TryGetValue(name, out var values) ? string.Join(", ", values) : null;

    public override string ToString() => $"#{Sequence} {Method} {RawTarget} {Protocol} from {RemoteEndpoint}";
}

/// <summary>
/// Every request a <see cref="ScriptedUpstream"/> received, in order, with waits that complete when
/// requests arrive (no polling, no sleeps) and concurrency counters.
/// </summary>
/// <remarks>
/// A request is added once its body has been read (so entries are complete), or on arrival when its
/// rule does not buffer the body. <see cref="ActiveRequests"/> counts from the arrival of the request
/// head until the script for it has finished (the response sent, reset or abandoned).
/// </remarks>
internal sealed class UpstreamRequestLog
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private readonly Lock _lock = new();
    private readonly List<UpstreamRequest> _requests = new();
    private readonly List<Exception> _errors = new();
    private readonly List<(Func<List<UpstreamRequest>, bool> Done, TaskCompletionSource Signal)> _waiters = new();
    private long _sequence;
    private int _active;
    private int _maxConcurrent;

    /// <summary>A snapshot of the requests received so far, in the order they were logged.</summary>
    public IReadOnlyList<UpstreamRequest> Requests
    {
        get
        {
            lock (_lock)
            {
                return _requests.ToArray();
            }
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _requests.Count;
            }
        }
    }

    /// <summary>Requests being served right now.</summary>
    public int ActiveRequests
    {
        get
        {
            lock (_lock)
            {
                return _active;
            }
        }
    }

    /// <summary>The most requests ever in flight at once (since start or <see cref="Clear"/>).</summary>
    public int MaxConcurrentRequests
    {
        get
        {
            lock (_lock)
            {
                return _maxConcurrent;
            }
        }
    }

    /// <summary>
    /// Exceptions thrown by scripts (a predicate, a custom handler, trailers asked over HTTP/1.1), not
    /// counting the client going away. Tests can assert it is empty to catch a broken script.
    /// </summary>
    public IReadOnlyList<Exception> ScriptErrors
    {
        get
        {
            lock (_lock)
            {
                return _errors.ToArray();
            }
        }
    }

    /// <summary>Completes with the first <paramref name="count"/> requests once that many have been logged.</summary>
    public async Task<IReadOnlyList<UpstreamRequest>> WaitForRequestsAsync(int count, TimeSpan? timeout = null)
    {
        await WaitAsync(requests => requests.Count >= count, $"{count} request(s)", timeout);
        lock (_lock)
        {
            return _requests.Take(count).ToArray();
        }
    }

    /// <summary>Completes with the first logged request (already there or still to come) matching <paramref name="match"/>.</summary>
    public async Task<UpstreamRequest> WaitForRequestAsync(Func<UpstreamRequest, bool> match, TimeSpan? timeout = null)
    {
        await WaitAsync(requests => requests.Exists(r => match(r)), "a matching request", timeout);
        lock (_lock)
        {
            return _requests.First(match);
        }
    }

    /// <summary>Forgets the requests and errors so far and restarts <see cref="MaxConcurrentRequests"/> from what is in flight now.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _requests.Clear();
            _errors.Clear();
            _maxConcurrent = _active;
        }
    }

    /// <summary>A request head arrived: its sequence number and the concurrency including it.</summary>
    internal (long Sequence, int Concurrent) Enter()
    {
        lock (_lock)
        {
            _active++;
            _maxConcurrent = Math.Max(_maxConcurrent, _active);
            return (++_sequence, _active);
        }
    }

    internal void Exit()
    {
        lock (_lock)
        {
            _active--;
        }
    }

    internal void Add(UpstreamRequest request)
    {
        lock (_lock)
        {
            _requests.Add(request);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Done(_requests))
                {
                    _waiters[i].Signal.TrySetResult();
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    internal void AddError(Exception error)
    {
        lock (_lock)
        {
            _errors.Add(error);
        }
    }

    private async Task WaitAsync(Func<List<UpstreamRequest>, bool> done, string what, TimeSpan? timeout)
    {
        var limit = timeout ?? DefaultTimeout;
        var waiter = (done, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (_lock)
        {
            if (done(_requests))
            {
                return;
            }

            _waiters.Add(waiter);
        }

        try
        {
            await waiter.Item2.Task.WaitAsync(limit);
        }
        catch (TimeoutException)
        {
            string seen;
            lock (_lock)
            {
                _waiters.Remove(waiter);
                seen = _requests.Count == 0 ? " none" : "\n" + string.Join("\n", _requests);
            }

            throw new TimeoutException($"the upstream did not receive {what} within {limit}; it received:{seen}");
        }
    }
}
