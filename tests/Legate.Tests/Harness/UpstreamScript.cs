using Microsoft.AspNetCore.Http;

namespace Legate.Tests.Harness;

/// <summary>
/// What a <see cref="ScriptedUpstream"/> answers: rules tried in the order they were added (the
/// first that matches and has uses left wins), else <see cref="Default"/>. Rules can be added or
/// cleared while the upstream runs (e.g. "now start failing"); all members are thread-safe.
/// </summary>
/// <example><code>
/// var script = new UpstreamScript(UpstreamResponse.Echo())
///     .OnPath("/slow", UpstreamResponse.Text("late") with { Delay = TimeSpan.FromSeconds(2) })
///     .OnPath("/flaky", UpstreamResponse.Text("down", 503), times: 2)   // then falls through to Default
///     .When(r => r.Method == "DELETE", UpstreamResponse.Text("", 405));
/// </code></example>
internal sealed class UpstreamScript
{
    private readonly Lock _lock = new();
    private readonly List<Rule> _rules = new();
    private UpstreamResponse _default;

    /// <param name="defaultResponse">Answer when no rule matches; 200 with an empty body when null.</param>
    public UpstreamScript(UpstreamResponse? defaultResponse = null)
    {
        _default = defaultResponse ?? UpstreamResponse.Text("");
        _default.Validate();
    }

    /// <summary>The answer when no rule matches.</summary>
    public UpstreamResponse Default
    {
        get
        {
            lock (_lock)
            {
                return _default;
            }
        }

        set
        {
            value.Validate();
            lock (_lock)
            {
                _default = value;
            }
        }
    }

    /// <summary>Requests whose raw path (the target before <c>?</c>, not decoded) equals <paramref name="path"/>.</summary>
    /// <param name="times">How many requests the rule answers before it stops matching; unlimited when null.</param>
    public UpstreamScript OnPath(string path, UpstreamResponse response, int? times = null) =>
        When(request => ScriptedUpstream.RawPath(request) == path, response, times);

    /// <summary>Requests whose raw path starts with <paramref name="prefix"/>.</summary>
    public UpstreamScript OnPrefix(string prefix, UpstreamResponse response, int? times = null) =>
        When(request => ScriptedUpstream.RawPath(request).StartsWith(prefix, StringComparison.Ordinal), response, times);

    /// <summary>
    /// Requests for which <paramref name="predicate"/> is true. It sees the request head (method,
    /// path, headers; <see cref="ScriptedUpstream.RawTarget"/> for the raw target) before the body
    /// is read, and must not read the body.
    /// </summary>
    public UpstreamScript When(Func<HttpRequest, bool> predicate, UpstreamResponse response, int? times = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(times ?? 0, nameof(times));
        response.Validate();
        lock (_lock)
        {
            _rules.Add(new Rule(predicate, response, times));
        }

        return this;
    }

    /// <summary>Removes every rule; <see cref="Default"/> stays.</summary>
    public void ClearRules()
    {
        lock (_lock)
        {
            _rules.Clear();
        }
    }

    /// <summary>The response for <paramref name="request"/>, using up one of the chosen rule's uses.</summary>
    internal UpstreamResponse Select(HttpRequest request)
    {
        lock (_lock)
        {
            foreach (var rule in _rules)
            {
                if (rule.Remaining is not 0 && rule.Predicate(request))
                {
                    rule.Remaining--;
                    return rule.Response;
                }
            }

            return _default;
        }
    }

    private sealed class Rule(Func<HttpRequest, bool> predicate, UpstreamResponse response, int? remaining)
    {
        public Func<HttpRequest, bool> Predicate { get; } = predicate;

        public UpstreamResponse Response { get; } = response;

        /// <summary>Uses left; null = unlimited.</summary>
        public int? Remaining { get; set; } = remaining;
    }
}
