using System.Net;
using System.Net.Sockets;
using Legate.Upstream;

namespace Legate.Tests.Upstream;

/// <summary>
/// Answers from a table the test sets: addresses, an empty answer, a failure, or an answer the
/// test completes later. Honours the family hint like getaddrinfo would. Records every query.
/// </summary>
internal sealed class FakeDnsResolver(TimeProvider? time = null) : IDnsResolver
{
    private readonly Lock _lock = new();
    private readonly List<(string Name, DateTimeOffset At)> _times = [];
    private readonly Dictionary<string, Func<Task<IReadOnlyList<IPAddress>>>> _answers = new(StringComparer.Ordinal);
    private readonly List<(string Name, AddressFamily Family)> _queries = [];

    public IReadOnlyList<(string Name, AddressFamily Family)> Queries
    {
        get
        {
            lock (_lock)
            {
                return _queries.ToArray();
            }
        }
    }

    public int QueryCount(string name)
    {
        lock (_lock)
        {
            return _queries.Count(q => q.Name == name);
        }
    }

    /// <summary>When each query for <paramref name="name"/> was made, by the clock given to the constructor.</summary>
    public DateTimeOffset[] QueryTimes(string name)
    {
        lock (_lock)
        {
            return _times.Where(t => t.Name == name).Select(t => t.At).ToArray();
        }
    }

    public void Answer(string name, params string[] addresses)
    {
        var parsed = addresses.Select(IPAddress.Parse).ToArray();
        Set(name, () => Task.FromResult<IReadOnlyList<IPAddress>>(parsed));
    }

    public void Fail(string name) =>
        Set(name, () => Task.FromException<IReadOnlyList<IPAddress>>(new SocketException((int)SocketError.TryAgain)));

    /// <summary>The next queries for <paramref name="name"/> wait until the returned source is completed.</summary>
    public TaskCompletionSource<IReadOnlyList<IPAddress>> Pending(string name)
    {
        var source = new TaskCompletionSource<IReadOnlyList<IPAddress>>();
        Set(name, () => source.Task);
        return source;
    }

    public async Task<IReadOnlyList<IPAddress>> ResolveAsync(string hostName, AddressFamily family, CancellationToken cancellationToken)
    {
        Func<Task<IReadOnlyList<IPAddress>>>? answer;
        lock (_lock)
        {
            _queries.Add((hostName, family));
            _times.Add((hostName, (time ?? TimeProvider.System).GetUtcNow()));
            _answers.TryGetValue(hostName, out answer);
        }

        if (answer is null)
        {
            return [];
        }

        var addresses = await answer().WaitAsync(cancellationToken);
        return family == AddressFamily.Unspecified ? addresses : addresses.Where(a => a.AddressFamily == family).ToArray();
    }

    private void Set(string name, Func<Task<IReadOnlyList<IPAddress>>> answer)
    {
        lock (_lock)
        {
            _answers[name] = answer;
        }
    }
}
