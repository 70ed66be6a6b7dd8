using Legate.Network;
using Legate.Tests.Extensions.Filters.Http;

namespace Legate.Tests.Network;

public sealed class DeadlineTimerTests
{
    [Fact]
    public async Task ExpiresAtTheDeadlineOnce()
    {
        var clock = new ManualClock();
        var fired = 0;
        await using var timer = new DeadlineTimer(clock, _ => fired++, this);

        timer.Set(TimeSpan.FromSeconds(10));
        clock.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(0, fired);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, fired);
        clock.Advance(TimeSpan.FromSeconds(100));
        Assert.Equal(1, fired);
    }

    [Fact]
    public async Task MovingTheDeadlineLaterPostponesExpiry()
    {
        var clock = new ManualClock();
        var fired = 0;
        await using var timer = new DeadlineTimer(clock, _ => fired++, this);

        timer.Set(TimeSpan.FromSeconds(10));
        clock.Advance(TimeSpan.FromSeconds(6));
        timer.Set(TimeSpan.FromSeconds(10)); // now due at 16 s
        clock.Advance(TimeSpan.FromSeconds(4)); // 10 s: the original tick finds the later deadline
        Assert.Equal(0, fired);
        clock.Advance(TimeSpan.FromSeconds(6)); // 16 s
        Assert.Equal(1, fired);
    }

    [Fact]
    public async Task ClearedDeadlinesNeverFireAndAShorterOneAfterALongOneIsHonoured()
    {
        var clock = new ManualClock();
        var fired = 0;
        await using var timer = new DeadlineTimer(clock, _ => fired++, this);

        timer.Set(TimeSpan.FromHours(1));
        timer.Clear();
        timer.Set(TimeSpan.FromSeconds(5)); // earlier than the pending tick: must re-arm
        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(1, fired);

        timer.Set(TimeSpan.FromSeconds(5));
        timer.Clear();
        clock.Advance(TimeSpan.FromHours(2));
        Assert.Equal(1, fired);
    }
}
