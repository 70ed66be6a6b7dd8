using Legate.Network.Epoll;

namespace Legate.Tests.Network;

/// <summary>
/// When an epoll loop pauses before its next wait (<see cref="EventCoalescing"/>): only after a
/// small batch, only while the loop has been busy for most of its recent time, never when off.
/// Times are Stopwatch ticks as the loop records them; nothing here sleeps or measures time.
/// </summary>
public sealed class EventCoalescingTests
{
    private const long Microsecond = 1_000; // Stopwatch ticks are nanoseconds on Linux; the ratios are what count

    [Fact]
    public void ALoopBusyWithSmallBatchesPauses()
    {
        var coalescing = Loaded(idle: 5 * Microsecond, busy: 95 * Microsecond);

        Assert.True(coalescing.BusyShare >= EventCoalescing.BusyPercent, $"busy share {coalescing.BusyShare}%");
        Assert.True(coalescing.ShouldPause(1));
        Assert.True(coalescing.ShouldPause(EventCoalescing.SmallBatch - 1));
    }

    [Fact]
    public void ABigBatchOrNoBatchNeverPauses()
    {
        var coalescing = Loaded(idle: 5 * Microsecond, busy: 95 * Microsecond);

        Assert.False(coalescing.ShouldPause(EventCoalescing.SmallBatch));
        Assert.False(coalescing.ShouldPause(256));
        Assert.False(coalescing.ShouldPause(0));
    }

    [Fact]
    public void ALightlyLoadedLoopNeverPauses()
    {
        // A request every millisecond taking 20 µs: 2% busy. Pausing would only add latency.
        var coalescing = Loaded(idle: 1000 * Microsecond, busy: 20 * Microsecond);
        Assert.False(coalescing.ShouldPause(1));

        // Just under the threshold: still no pause.
        coalescing = Loaded(idle: 20 * Microsecond, busy: 80 * Microsecond);
        Assert.False(coalescing.ShouldPause(1));
    }

    [Fact]
    public void AFreshLoopDoesNotPause()
    {
        var coalescing = new EventCoalescing(10);
        Assert.False(coalescing.ShouldPause(1));
    }

    [Fact]
    public void ZeroTurnsCoalescingOff()
    {
        var coalescing = Loaded(idle: 0, busy: 100 * Microsecond, pause: 0);
        Assert.Equal(100, coalescing.BusyShare);
        Assert.False(coalescing.ShouldPause(1));
    }

    [Fact]
    public void WhenTheLoadGoesTheLoopStopsPausingAndOneQuietBatchDoesNotStopIt()
    {
        var coalescing = Loaded(idle: 5 * Microsecond, busy: 95 * Microsecond);

        // One long wait (a 2 ms gap in the traffic) among busy batches: still under load.
        coalescing.Record(2000 * Microsecond, 95 * Microsecond);
        Assert.True(coalescing.ShouldPause(1), $"busy share {coalescing.BusyShare}%");

        // The traffic becomes light: within a few hundred batches the pauses stop.
        var stopped = -1;
        for (var i = 0; i < 1000 && stopped < 0; i++)
        {
            coalescing.Record(500 * Microsecond, 20 * Microsecond);
            if (!coalescing.ShouldPause(1))
            {
                stopped = i;
            }
        }

        Assert.InRange(stopped, 1, 300);
    }

    [Theory]
    [InlineData(null, EventCoalescing.DefaultPauseMicroseconds)]
    [InlineData("0", 0)]
    [InlineData("25", 25)]
    [InlineData(" 40 ", 40)]
    [InlineData("1000", 1000)]
    public void ThePauseComesFromTheEnvironmentVariable(string? value, int expected)
    {
        Assert.Equal(expected, EventCoalescing.ParsePause(value, out var error));
        Assert.Null(error);
    }

    [Theory]
    [InlineData("ten")]
    [InlineData("-5")]
    [InlineData("1001")]
    [InlineData("10us")]
    [InlineData("")]
    public void ABadValueIsNamedAndTheDefaultKept(string value)
    {
        Assert.Equal(EventCoalescing.DefaultPauseMicroseconds, EventCoalescing.ParsePause(value, out var error));
        Assert.NotNull(error);
        Assert.Contains(EventCoalescing.PauseVariable, error);
        Assert.Contains($"'{value}'", error);
    }

    private static EventCoalescing Loaded(long idle, long busy, int pause = 10)
    {
        var coalescing = new EventCoalescing(pause);
        for (var i = 0; i < 4000; i++)
        {
            coalescing.Record(idle, busy);
        }

        return coalescing;
    }
}
