using System.Net;
using Legate.Http;

namespace Legate.Tests.Harness;

/// <summary>A finished stream as <see cref="StreamRecorder"/> saw it.</summary>
internal sealed record RecordedStream(string Method, string Path, string Protocol, int ResponseCode, string Flags, string LongFlags, string? Details, bool ResponseComplete, bool Reset)
{
    public override string ToString() => $"{Method} {Path} {Protocol} → {ResponseCode} flags '{Flags}' details '{Details}'";
}

/// <summary>
/// Records every stream that ends on one listener (by its bound address) in this process, through
/// <see cref="StreamObservers"/>: the response code, Envoy's response flags and
/// %RESPONSE_CODE_DETAILS% of streams that end without a local reply too (DC, resets).
/// </summary>
internal sealed class StreamRecorder : IDisposable
{
    private readonly IDisposable _registration;
    private readonly List<RecordedStream> _streams = new();
    private readonly List<(Func<RecordedStream, bool> Match, TaskCompletionSource<RecordedStream> Done)> _waiters = new();
    private readonly Lock _lock = new();
    private readonly int _port;

    public StreamRecorder(IPEndPoint listener)
    {
        _port = listener.Port;
        _registration = StreamObservers.Add(OnStreamEnd);
    }

    public IReadOnlyList<RecordedStream> Streams
    {
        get
        {
            lock (_lock)
            {
                return _streams.ToArray();
            }
        }
    }

    /// <summary>The first recorded stream (past or future) matching <paramref name="match"/>, within 30 s.</summary>
    public Task<RecordedStream> WaitForAsync(Func<RecordedStream, bool> match)
    {
        lock (_lock)
        {
            if (_streams.FirstOrDefault(match) is { } seen)
            {
                return Task.FromResult(seen);
            }

            var done = new TaskCompletionSource<RecordedStream>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((match, done));
            return done.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    /// <summary>The stream whose path is <paramref name="path"/>.</summary>
    public Task<RecordedStream> WaitForPathAsync(string path) => WaitForAsync(s => s.Path == path);

    private void OnStreamEnd(HttpStream stream)
    {
        if (stream.Info.DownstreamLocalAddress?.Port != _port || stream.RequestHeaders is null)
        {
            return;
        }

        var info = stream.Info;
        var record = new RecordedStream(
            stream.RequestHeaders.Method,
            System.Text.Encoding.Latin1.GetString(stream.RequestHeaders.PathBytes),
            info.Protocol,
            info.ResponseCode,
            ResponseFlagNames.Format(info.ResponseFlags),
            ResponseFlagNames.FormatLong(info.ResponseFlags),
            info.ResponseCodeDetails,
            stream.ResponseComplete,
            stream.IsReset);
        lock (_lock)
        {
            _streams.Add(record);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Match(record))
                {
                    _waiters[i].Done.TrySetResult(record);
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    public void Dispose() => _registration.Dispose();
}
