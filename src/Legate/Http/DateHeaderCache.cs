using System.Globalization;
using System.Text;

namespace Legate.Http;

/// <summary>
/// The <c>date</c> response header value (RFC 9110 IMF-fixdate), formatted at most once a second
/// and shared by every stream, as Envoy's cached date provider does.
/// </summary>
internal static class DateHeaderCache
{
    private static Entry s_current = new(0, []);

    /// <summary>The current value as ASCII bytes.</summary>
    public static byte[] Value
    {
        get
        {
            var second = Environment.TickCount64 / 1000;
            var current = Volatile.Read(ref s_current);
            if (current.Second != second)
            {
                current = new Entry(second, Encoding.ASCII.GetBytes(DateTimeOffset.UtcNow.ToString("r", CultureInfo.InvariantCulture)));
                Volatile.Write(ref s_current, current);
            }

            return current.Bytes;
        }
    }

    private sealed record Entry(long Second, byte[] Bytes);
}
