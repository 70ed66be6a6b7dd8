using Legate.Tests.Harness;

namespace Legate.Tests.Xds;

/// <summary>Condition waits for the xDS tests (polling state the server exposes; never a fixed sleep as synchronisation).</summary>
internal static class XdsWait
{
    public static async Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting for " + what);
            }

            await Task.Delay(20);
        }
    }

    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting for " + what);
            }

            await Task.Delay(20);
        }
    }

    public static long Counter(InProcessLegate legate, string name) => legate.Server.Stats.Counter(name).Value;

    public static long Gauge(InProcessLegate legate, string name) => legate.Server.Stats.Gauge(name, Legate.Stats.ImportMode.NeverImport).Value;

    /// <summary>The body of GET <paramref name="path"/> on listener <paramref name="listener"/>, or "status N".</summary>
    public static async Task<string> GetAsync(InProcessLegate legate, string listener, string path = "/")
    {
        if (legate.Server.Listeners.Find(listener)?.BoundEndpoint is null)
        {
            return "no listener";
        }

        try
        {
            using var response = await legate.Http.GetAsync(legate.ListenerUri(listener, path));
            var body = await response.Content.ReadAsStringAsync();
            return response.IsSuccessStatusCode ? body : $"status {(int)response.StatusCode}";
        }
        catch (HttpRequestException ex)
        {
            return "error " + ex.Message;
        }
    }
}
