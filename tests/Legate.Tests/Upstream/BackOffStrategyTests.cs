using Legate.Upstream;

namespace Legate.Tests.Upstream;

public sealed class BackOffStrategyTests
{
    [Fact]
    public void JitteredExponentialDoublesUpToTheMaximumAndResets()
    {
        // A random source that always draws the top of the range shows each interval's bound.
        var backOff = new JitteredExponentialBackOffStrategy(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10), max => max - 1);

        var waits = Enumerable.Range(0, 6).Select(_ => backOff.NextBackOff().TotalMilliseconds).ToArray();
        backOff.Reset();

        Assert.Equal([999, 1999, 3999, 7999, 9999, 9999], waits);
        Assert.Equal(999, backOff.NextBackOff().TotalMilliseconds);
    }

    [Fact]
    public void JitterDrawsFromZeroToTheInterval()
    {
        var backOff = new JitteredExponentialBackOffStrategy(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), _ => 0);

        Assert.Equal(TimeSpan.Zero, backOff.NextBackOff());
    }

    [Fact]
    public void FixedIsTheRefreshRate()
    {
        var backOff = new FixedBackOffStrategy(TimeSpan.FromSeconds(5));

        Assert.Equal(TimeSpan.FromSeconds(5), backOff.NextBackOff());
        Assert.Equal(TimeSpan.FromSeconds(5), backOff.NextBackOff());
    }
}
