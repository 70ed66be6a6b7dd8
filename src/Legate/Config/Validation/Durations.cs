using Google.Protobuf.WellKnownTypes;

namespace Legate.Config.Validation;

/// <summary>
/// Durations and timestamps as a single <see cref="Int128"/> count of nanoseconds, so that the
/// range rules compare them like any other number (a <c>long</c> of nanoseconds would overflow
/// at ±292 years, while a Duration may span ±10,000 years).
/// </summary>
internal static class Durations
{
    public const long NanosPerSecond = 1_000_000_000;

    // Limits from google/protobuf/duration.proto and timestamp.proto.
    private const long MaxDurationSeconds = 315_576_000_000;
    public const long MinTimestampSeconds = -62_135_596_800; // 0001-01-01T00:00:00Z
    public const long MaxTimestampSeconds = 253_402_300_799; // 9999-12-31T23:59:59Z

    public static Int128 Nanos(Duration d) => ((Int128)d.Seconds * NanosPerSecond) + d.Nanos;

    public static Int128 Nanos(Timestamp t) => ((Int128)t.Seconds * NanosPerSecond) + t.Nanos;

    public static bool IsValid(Duration d) =>
        d.Seconds is >= -MaxDurationSeconds and <= MaxDurationSeconds
        && d.Nanos is > -(int)NanosPerSecond and < (int)NanosPerSecond
        && !(d.Seconds > 0 && d.Nanos < 0) && !(d.Seconds < 0 && d.Nanos > 0);

    public static bool IsValid(Timestamp t) =>
        t.Seconds is >= MinTimestampSeconds and <= MaxTimestampSeconds && t.Nanos is >= 0 and < (int)NanosPerSecond;

    public static Int128 Now()
    {
        var ticks = DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks;
        return (Int128)ticks * 100;
    }
}
