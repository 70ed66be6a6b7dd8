namespace Legate.Upstream;

/// <summary>The same wait every time: without dns_failure_refresh_rate, a failed resolution is retried at dns_refresh_rate.</summary>
internal sealed class FixedBackOffStrategy(TimeSpan interval) : IBackOffStrategy
{
    public TimeSpan NextBackOff() => interval;

    public void Reset()
    {
    }
}
