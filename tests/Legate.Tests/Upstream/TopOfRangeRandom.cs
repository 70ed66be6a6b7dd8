namespace Legate.Tests.Upstream;

/// <summary>Always draws the largest value allowed: makes jittered waits exact (their upper bound).</summary>
internal sealed class TopOfRangeRandom : Random
{
    public override long NextInt64(long maxValue) => maxValue - 1;
}
