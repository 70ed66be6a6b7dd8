namespace Legate.Http;

/// <summary>
/// In-process observers of finished streams: called once per stream as it ends, with its
/// <see cref="StreamInfo"/> final (response code, flags, details). Tests use it to assert Envoy's
/// response flags on streams that end without a local reply (DC, UT after the response started);
/// the access loggers have their own path. An observer runs on the data path: copy what it needs
/// and return; the stream object is reused afterwards.
/// </summary>
internal static class StreamObservers
{
    private static Action<HttpStream>[] s_observers = [];

    /// <summary>Adds <paramref name="observer"/> until the returned handle is disposed.</summary>
    public static IDisposable Add(Action<HttpStream> observer)
    {
        Update(list => [.. list, observer]);
        return new Registration(observer);
    }

    /// <summary>Calls every observer; one array read when there are none.</summary>
    public static void Notify(HttpStream stream)
    {
        var observers = Volatile.Read(ref s_observers);
        for (var i = 0; i < observers.Length; i++)
        {
            observers[i](stream);
        }
    }

    private static void Update(Func<Action<HttpStream>[], Action<HttpStream>[]> change)
    {
        while (true)
        {
            var current = Volatile.Read(ref s_observers);
            if (Interlocked.CompareExchange(ref s_observers, change(current), current) == current)
            {
                return;
            }
        }
    }

    private sealed class Registration(Action<HttpStream> observer) : IDisposable
    {
        public void Dispose() => Update(list => Array.FindAll(list, o => o != observer));
    }
}
