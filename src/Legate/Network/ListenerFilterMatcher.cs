using System.Net;
using Envoy.Config.Listener.V3;

namespace Legate.Network;

/// <summary>
/// A listener filter's <c>filter_disabled</c> (Envoy's ListenerFilterChainMatchPredicate): when it
/// matches an accepted connection, the filter is skipped for that connection. Compiled once per
/// listener into a tree of small predicates; evaluated against the connection's local address as
/// the filters before this one left it (original_dst and proxy_protocol may have restored it), as
/// Envoy evaluates it when the filter's turn comes.
/// </summary>
internal abstract class ListenerFilterMatcher
{
    public abstract bool Matches(IPEndPoint localEndPoint);

    /// <summary>
    /// Compiles a predicate the config validator has already checked (a rule is set, and/or have at
    /// least two rules, any_match is true).
    /// </summary>
    public static ListenerFilterMatcher Compile(ListenerFilterChainMatchPredicate predicate) => predicate.RuleCase switch
    {
        ListenerFilterChainMatchPredicate.RuleOneofCase.OrMatch => new Or([.. predicate.OrMatch.Rules.Select(Compile)]),
        ListenerFilterChainMatchPredicate.RuleOneofCase.AndMatch => new And([.. predicate.AndMatch.Rules.Select(Compile)]),
        ListenerFilterChainMatchPredicate.RuleOneofCase.NotMatch => new Not(Compile(predicate.NotMatch)),
        ListenerFilterChainMatchPredicate.RuleOneofCase.DestinationPortRange =>
            new DestinationPortRange(predicate.DestinationPortRange.Start, predicate.DestinationPortRange.End),
        _ => Any.Instance,
    };

    private sealed class Any : ListenerFilterMatcher
    {
        public static readonly Any Instance = new();

        public override bool Matches(IPEndPoint localEndPoint) => true;
    }

    private sealed class Not(ListenerFilterMatcher inner) : ListenerFilterMatcher
    {
        public override bool Matches(IPEndPoint localEndPoint) => !inner.Matches(localEndPoint);
    }

    private sealed class And(ListenerFilterMatcher[] rules) : ListenerFilterMatcher
    {
        public override bool Matches(IPEndPoint localEndPoint) => rules.All(rule => rule.Matches(localEndPoint));
    }

    private sealed class Or(ListenerFilterMatcher[] rules) : ListenerFilterMatcher
    {
        public override bool Matches(IPEndPoint localEndPoint) => rules.Any(rule => rule.Matches(localEndPoint));
    }

    /// <summary>The local (destination) port in [start, end): Envoy's Int32Range is half-open.</summary>
    private sealed class DestinationPortRange(int start, int end) : ListenerFilterMatcher
    {
        public override bool Matches(IPEndPoint localEndPoint) => localEndPoint.Port >= start && localEndPoint.Port < end;
    }
}

/// <summary>A listener filter with a <c>filter_disabled</c> predicate: skipped where it matches.</summary>
internal sealed class DisableableListenerFilter(IListenerFilter filter, ListenerFilterMatcher disabled) : IListenerFilter
{
    public IListenerFilter Filter => filter;

    public ValueTask<bool> OnAcceptAsync(ListenerFilterContext context, CancellationToken cancellationToken) =>
        disabled.Matches(context.LocalEndPoint) ? ValueTask.FromResult(true) : filter.OnAcceptAsync(context, cancellationToken);
}
