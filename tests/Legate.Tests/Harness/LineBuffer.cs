using System.Text.RegularExpressions;

namespace Legate.Tests.Harness;

/// <summary>
/// Lines of output collected from another thread, with waits that complete when a matching line
/// arrives (no polling, no sleeps) and fail at once when the writer is done.
/// </summary>
internal sealed class LineBuffer
{
    private readonly Lock _lock = new();
    private readonly List<string> _lines = new();
    private readonly List<(Regex Pattern, TaskCompletionSource<Match> Done)> _waiters = new();
    private bool _completed;

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lock)
            {
                return _lines.ToArray();
            }
        }
    }

    public string Text => string.Join("\n", Lines);

    public void Add(string line)
    {
        lock (_lock)
        {
            _lines.Add(line);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                var match = _waiters[i].Pattern.Match(line);
                if (match.Success)
                {
                    _waiters[i].Done.TrySetResult(match);
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    /// <summary>No more lines will come (the process exited): pending waits fail with what was seen.</summary>
    public void Complete()
    {
        lock (_lock)
        {
            _completed = true;
            foreach (var (pattern, done) in _waiters)
            {
                done.TrySetException(new InvalidOperationException($"output ended without a line matching /{pattern}/; output was:\n{string.Join("\n", _lines)}"));
            }

            _waiters.Clear();
        }
    }

    /// <summary>Waits for the first line (already seen or still to come) matching <paramref name="pattern"/>.</summary>
    public async Task<Match> WaitForAsync(string pattern, TimeSpan timeout)
    {
        var regex = new Regex(pattern, RegexOptions.CultureInvariant);
        TaskCompletionSource<Match> done;
        lock (_lock)
        {
            foreach (var line in _lines)
            {
                var match = regex.Match(line);
                if (match.Success)
                {
                    return match;
                }
            }

            if (_completed)
            {
                throw new InvalidOperationException($"output ended without a line matching /{pattern}/; output was:\n{string.Join("\n", _lines)}");
            }

            done = new TaskCompletionSource<Match>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((regex, done));
        }

        try
        {
            return await done.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no line matching /{pattern}/ within {timeout}; output so far:\n{Text}");
        }
    }
}
