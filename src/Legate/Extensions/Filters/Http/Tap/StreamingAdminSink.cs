using System.Threading.Channels;
using Envoy.Data.Tap.V3;
using Format = Envoy.Config.Tap.V3.OutputSink.Types.Format;

namespace Legate.Extensions.Filters.Http.Tap;

/// <summary>
/// <c>streaming_admin</c>: traces go to the <c>POST /tap</c> response that attached the tap, one
/// JSON document each. A reader that falls far behind loses traces rather than growing memory
/// without bound. <c>buffered_admin</c> (<see cref="UseBuffering"/>): the response collects
/// <see cref="MaxTraces"/> traces (or what came before <see cref="FlushTimeout"/>), writes them
/// and ends, which detaches the tap.
/// </summary>
internal sealed class StreamingAdminSink : TapSink
{
    /// <summary>Traces waiting for the admin client; more are dropped (and counted).</summary>
    public const int MaxPendingTraces = 1024;

    private readonly Channel<byte[]> _traces;
    private long _dropped;

    public StreamingAdminSink(Format format)
        : base(format) =>
        _traces = Channel.CreateBounded<byte[]>(
            new BoundedChannelOptions(MaxPendingTraces) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true },
            _ => Interlocked.Increment(ref _dropped));

    /// <summary>The encoded traces, in the order the streams ended.</summary>
    public ChannelReader<byte[]> Traces => _traces.Reader;

    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary><c>buffered_admin.max_traces</c>; 0 for a streaming sink.</summary>
    public ulong MaxTraces { get; private set; }

    /// <summary><c>buffered_admin.timeout</c>; null waits for <see cref="MaxTraces"/> however long it takes.</summary>
    public TimeSpan? FlushTimeout { get; private set; }

    /// <summary>Makes this a <c>buffered_admin</c> sink; called once, before the tap is attached.</summary>
    public void UseBuffering(ulong maxTraces, TimeSpan? timeout)
    {
        MaxTraces = maxTraces;
        FlushTimeout = timeout;
    }

    public override void Submit(TraceWrapper trace, ulong traceId)
    {
        if (!_traces.Writer.TryWrite(Encode(trace)))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>The admin stream is gone: no more traces are accepted.</summary>
    public void Complete() => _traces.Writer.TryComplete();
}
