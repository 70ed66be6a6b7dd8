using System.Threading.Channels;
using Envoy.Data.Tap.V3;
using Format = Envoy.Config.Tap.V3.OutputSink.Types.Format;

namespace Legate.Extensions.Filters.Http.Tap;

/// <summary>
/// <c>streaming_admin</c>: traces go to the <c>POST /tap</c> response that attached the tap, one
/// JSON document each. A reader that falls far behind loses traces rather than growing memory
/// without bound.
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
