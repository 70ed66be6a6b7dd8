namespace Legate.Network;

/// <summary>Envoy's connection ids: one process-wide sequence, so <c>%CONNECTION_ID%</c> is unique per process.</summary>
internal static class ConnectionIds
{
    private static long s_last;

    public static ulong Next() => (ulong)Interlocked.Increment(ref s_last);
}
