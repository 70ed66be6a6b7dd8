using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Router.Matching;
using EnvoyListener = Envoy.Config.Listener.V3.Listener;
using XdsMatcher = global::Xds.Type.Matcher.V3;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// A listener's <c>filter_chain_matcher</c>: Envoy's unified matcher (<c>xds.type.matcher.v3.Matcher</c>)
/// over the connection's network inputs, whose actions name filter chains
/// (<c>google.protobuf.StringValue</c> with a <c>FilterChain.name</c>). It replaces every chain's
/// <c>filter_chain_match</c>. Supported: <c>matcher_list</c> (first field matcher whose predicate
/// holds and whose <c>on_match</c> yields a chain; <c>single_predicate</c> with <c>value_match</c>
/// or the <c>envoy.matching.matchers.ip</c> input matcher, <c>or_matcher</c>, <c>and_matcher</c>,
/// <c>not_matcher</c>), <c>matcher_tree</c> with <c>exact_match_map</c>, <c>prefix_match_map</c>
/// (longest prefix first, shorter ones when a nested matcher finds nothing) and the
/// <c>xds.type.matcher.v3.IPMatcher</c> custom match (longest range first, <c>exclusive</c> stops
/// there), nested matchers and <c>on_no_match</c> at every level. Inputs: destination and source
/// IP and port, direct source IP, source type (<c>local</c> or none), server name, transport
/// protocol, application protocols (Envoy's <c>'h2','http/1.1'</c>). Immutable and thread-safe.
/// </summary>
internal sealed class FilterChainMatcherTree
{
    private readonly Node _root;
    private readonly Dictionary<string, int> _chains;

    private FilterChainMatcherTree(Node root, Dictionary<string, int> chains)
    {
        _root = root;
        _chains = chains;
    }

    /// <summary>The index of the chain the matcher names, or -1 (no match, or a name no chain has).</summary>
    public int Match(in ConnectionMatchInfo connection) =>
        _root.Evaluate(in connection) is { } name && _chains.TryGetValue(name, out var index) ? index : -1;

    public static FilterChainMatcherTree? Compile(EnvoyListener listener, string path, ConfigErrors errors)
    {
        var errorCount = errors.Errors.Count;
        var chains = new Dictionary<string, int>(StringComparer.Ordinal);
        var chainsPath = FieldPath.Field(path, "filter_chains");
        for (var i = 0; i < listener.FilterChains.Count; i++)
        {
            var chain = listener.FilterChains[i];
            var chainPath = FieldPath.Index(chainsPath, i);
            if (chain.FilterChainMatch is not null)
            {
                errors.Warn(FieldPath.Field(chainPath, "filter_chain_match"), "ignored: filter_chain_matcher selects the filter chains (as in Envoy)");
            }

            if (chain.Name.Length > 0 && !chains.TryAdd(chain.Name, i))
            {
                errors.Add(FieldPath.Field(chainPath, "name"), $"filter chain name '{chain.Name}' is used twice: filter_chain_matcher selects chains by their unique names");
            }
        }

        var compiler = new Compiler(errors, chains);
        var root = compiler.Matcher(listener.FilterChainMatcher, FieldPath.Field(path, "filter_chain_matcher"));
        return root is null || errors.Errors.Count > errorCount ? null : new FilterChainMatcherTree(root, chains);
    }

    private enum InputKind
    {
        DestinationIp,
        DestinationPort,
        SourceIp,
        SourcePort,
        DirectSourceIp,
        SourceType,
        ServerName,
        TransportProtocol,
        ApplicationProtocol,
    }

    private static bool IsIp(InputKind kind) => kind is InputKind.DestinationIp or InputKind.SourceIp or InputKind.DirectSourceIp;

    /// <summary>The input's value as Envoy's network data inputs produce it; null when it has none.</summary>
    private static string? Read(InputKind kind, in ConnectionMatchInfo c) => kind switch
    {
        InputKind.DestinationIp => Text(c.LocalEndPoint.Address),
        InputKind.DestinationPort => c.LocalEndPoint.Port.ToString(CultureInfo.InvariantCulture),
        InputKind.SourceIp => Text(c.RemoteEndPoint.Address),
        InputKind.SourcePort => c.RemoteEndPoint.Port.ToString(CultureInfo.InvariantCulture),
        InputKind.DirectSourceIp => Text(c.DirectRemoteEndPoint.Address),
        InputKind.SourceType => SourceTypeLevel.IsSameIpOrLoopback(in c) ? "local" : null,
        InputKind.ServerName => c.RequestedServerName.Length > 0 ? c.RequestedServerName : null,
        InputKind.TransportProtocol => c.TransportProtocol,
        InputKind.ApplicationProtocol => c.ApplicationProtocols.IsDefaultOrEmpty ? null : "'" + string.Join("','", c.ApplicationProtocols) + "'",
        _ => null,
    };

    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; they match as IPv4, as in filter_chain_match.
    private static string Text(System.Net.IPAddress address) => (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();

    private static IpBits ReadIp(InputKind kind, in ConnectionMatchInfo c) => IpBits.OfConnection(kind switch
    {
        InputKind.DestinationIp => c.LocalEndPoint.Address,
        InputKind.SourceIp => c.RemoteEndPoint.Address,
        _ => c.DirectRemoteEndPoint.Address,
    });

    private abstract class Node
    {
        public abstract string? Evaluate(in ConnectionMatchInfo connection);
    }

    /// <summary>An on_match: a chain name, or a nested matcher (which may find nothing).</summary>
    private sealed class OnMatch(string? action, Node? nested)
    {
        public string? Evaluate(in ConnectionMatchInfo connection) => action ?? nested!.Evaluate(in connection);
    }

    private sealed class ListNode((Predicate Predicate, OnMatch OnMatch)[] matchers, OnMatch? onNoMatch) : Node
    {
        public override string? Evaluate(in ConnectionMatchInfo connection)
        {
            foreach (var (predicate, onMatch) in matchers)
            {
                if (predicate.Matches(in connection) && onMatch.Evaluate(in connection) is { } chain)
                {
                    return chain;
                }
            }

            return onNoMatch?.Evaluate(in connection);
        }
    }

    private sealed class ExactNode(InputKind input, Dictionary<string, OnMatch> map, OnMatch? onNoMatch) : Node
    {
        public override string? Evaluate(in ConnectionMatchInfo connection) =>
            Read(input, in connection) is { } value && map.TryGetValue(value, out var onMatch) && onMatch.Evaluate(in connection) is { } chain
                ? chain
                : onNoMatch?.Evaluate(in connection);
    }

    /// <summary>Prefixes longest first: a shorter one is tried when a longer one's nested matcher finds nothing.</summary>
    private sealed class PrefixNode(InputKind input, (string Prefix, OnMatch OnMatch)[] longestFirst, OnMatch? onNoMatch) : Node
    {
        public override string? Evaluate(in ConnectionMatchInfo connection)
        {
            if (Read(input, in connection) is { } value)
            {
                foreach (var (prefix, onMatch) in longestFirst)
                {
                    if (value.StartsWith(prefix, StringComparison.Ordinal) && onMatch.Evaluate(in connection) is { } chain)
                    {
                        return chain;
                    }
                }
            }

            return onNoMatch?.Evaluate(in connection);
        }
    }

    /// <summary>xds IPMatcher: ranges longest first; an <c>exclusive</c> range that matches ends the search.</summary>
    private sealed class IpNode(InputKind input, (IpPrefix Range, OnMatch OnMatch, bool Exclusive)[] longestFirst, OnMatch? onNoMatch) : Node
    {
        public override string? Evaluate(in ConnectionMatchInfo connection)
        {
            var address = ReadIp(input, in connection);
            foreach (var (range, onMatch, exclusive) in longestFirst)
            {
                if (!range.Contains(address))
                {
                    continue;
                }

                if (onMatch.Evaluate(in connection) is { } chain)
                {
                    return chain;
                }

                if (exclusive)
                {
                    break;
                }
            }

            return onNoMatch?.Evaluate(in connection);
        }
    }

    private abstract class Predicate
    {
        public abstract bool Matches(in ConnectionMatchInfo connection);
    }

    private sealed class StringPredicate(InputKind input, CompiledStringMatcher matcher) : Predicate
    {
        public override bool Matches(in ConnectionMatchInfo connection) => Read(input, in connection) is { } value && matcher.Match(value);
    }

    private sealed class IpPredicate(InputKind input, IpPrefix[] ranges) : Predicate
    {
        public override bool Matches(in ConnectionMatchInfo connection)
        {
            var address = ReadIp(input, in connection);
            foreach (var range in ranges)
            {
                if (range.Contains(address))
                {
                    return true;
                }
            }

            return false;
        }
    }

    private sealed class AnyPredicate(Predicate[] predicates) : Predicate
    {
        public override bool Matches(in ConnectionMatchInfo connection)
        {
            foreach (var predicate in predicates)
            {
                if (predicate.Matches(in connection))
                {
                    return true;
                }
            }

            return false;
        }
    }

    private sealed class AllPredicate(Predicate[] predicates) : Predicate
    {
        public override bool Matches(in ConnectionMatchInfo connection)
        {
            foreach (var predicate in predicates)
            {
                if (!predicate.Matches(in connection))
                {
                    return false;
                }
            }

            return true;
        }
    }

    private sealed class NotPredicate(Predicate inner) : Predicate
    {
        public override bool Matches(in ConnectionMatchInfo connection) => !inner.Matches(in connection);
    }

    /// <summary>Reads the matcher, adding errors (and warnings for actions naming no chain) under their paths.</summary>
    private sealed class Compiler(ConfigErrors errors, Dictionary<string, int> chains)
    {
        private static readonly string[] s_inputs =
        [
            "DestinationIPInput", "DestinationPortInput", "SourceIPInput", "SourcePortInput", "DirectSourceIPInput",
            "SourceTypeInput", "ServerNameInput", "TransportProtocolInput", "ApplicationProtocolInput",
        ];

        public Node? Matcher(XdsMatcher.Matcher? matcher, string path)
        {
            if (matcher is null)
            {
                errors.Add(path, "a matcher must be set");
                return null;
            }

            var onNoMatch = matcher.OnNoMatch is { } noMatch ? OnMatch(noMatch, FieldPath.Field(path, "on_no_match")) : null;
            switch (matcher.MatcherTypeCase)
            {
                case XdsMatcher.Matcher.MatcherTypeOneofCase.MatcherList:
                    return List(matcher.MatcherList, FieldPath.Field(path, "matcher_list"), onNoMatch);
                case XdsMatcher.Matcher.MatcherTypeOneofCase.MatcherTree:
                    return Tree(matcher.MatcherTree, FieldPath.Field(path, "matcher_tree"), onNoMatch);
                default:
                    errors.Add(path, "one of matcher_list or matcher_tree must be set");
                    return null;
            }
        }

        private ListNode? List(XdsMatcher.Matcher.Types.MatcherList list, string path, OnMatch? onNoMatch)
        {
            var matchersPath = FieldPath.Field(path, "matchers");
            if (list.Matchers.Count == 0)
            {
                errors.Add(matchersPath, "at least one field matcher is needed");
                return null;
            }

            var entries = new (Predicate, OnMatch)[list.Matchers.Count];
            var ok = true;
            for (var i = 0; i < entries.Length; i++)
            {
                var fieldPath = FieldPath.Index(matchersPath, i);
                var predicate = Predicate(list.Matchers[i].Predicate, FieldPath.Field(fieldPath, "predicate"));
                var onMatch = list.Matchers[i].OnMatch is { } m ? OnMatch(m, FieldPath.Field(fieldPath, "on_match")) : Missing(FieldPath.Field(fieldPath, "on_match"));
                ok &= predicate is not null && onMatch is not null;
                entries[i] = (predicate!, onMatch!);
            }

            return ok ? new ListNode(entries, onNoMatch) : null;
        }

        private Node? Tree(XdsMatcher.Matcher.Types.MatcherTree tree, string path, OnMatch? onNoMatch)
        {
            if (Input(tree.Input, FieldPath.Field(path, "input")) is not { } input)
            {
                return null;
            }

            switch (tree.TreeTypeCase)
            {
                case XdsMatcher.Matcher.Types.MatcherTree.TreeTypeOneofCase.ExactMatchMap:
                {
                    var map = new Dictionary<string, OnMatch>(StringComparer.Ordinal);
                    var ok = true;
                    foreach (var (key, value) in tree.ExactMatchMap.Map)
                    {
                        var onMatch = OnMatch(value, FieldPath.Field(FieldPath.Field(FieldPath.Field(path, "exact_match_map"), "map"), key));
                        ok &= onMatch is not null;
                        map[key] = onMatch!;
                    }

                    return ok ? new ExactNode(input, map, onNoMatch) : null;
                }

                case XdsMatcher.Matcher.Types.MatcherTree.TreeTypeOneofCase.PrefixMatchMap:
                {
                    var entries = new List<(string, OnMatch)>();
                    var ok = true;
                    foreach (var (key, value) in tree.PrefixMatchMap.Map)
                    {
                        var onMatch = OnMatch(value, FieldPath.Field(FieldPath.Field(FieldPath.Field(path, "prefix_match_map"), "map"), key));
                        ok &= onMatch is not null;
                        entries.Add((key, onMatch!));
                    }

                    return ok ? new PrefixNode(input, [.. entries.OrderByDescending(e => e.Item1.Length)], onNoMatch) : null;
                }

                case XdsMatcher.Matcher.Types.MatcherTree.TreeTypeOneofCase.CustomMatch:
                    return IpTree(input, tree.CustomMatch, FieldPath.Field(path, "custom_match"), onNoMatch);
                default:
                    errors.Add(path, "one of exact_match_map, prefix_match_map or custom_match must be set");
                    return null;
            }
        }

        private IpNode? IpTree(InputKind input, global::Xds.Core.V3.TypedExtensionConfig custom, string path, OnMatch? onNoMatch)
        {
            var typedPath = FieldPath.Field(path, "typed_config");
            if (!custom.TypedConfig.Is(XdsMatcher.IPMatcher.Descriptor))
            {
                errors.Add(typedPath, $"custom matcher {TypeName(custom.TypedConfig)} is not supported for filter chains; use xds.type.matcher.v3.IPMatcher");
                return null;
            }

            if (!IsIp(input))
            {
                errors.Add(typedPath, "an IPMatcher needs an IP input (destination, source or direct source IP)");
                return null;
            }

            var matcher = custom.TypedConfig.Unpack<XdsMatcher.IPMatcher>();
            var entries = new List<(IpPrefix, OnMatch, bool)>();
            var ok = true;
            for (var i = 0; i < matcher.RangeMatchers.Count; i++)
            {
                var rangePath = FieldPath.Index(FieldPath.Field(typedPath, "range_matchers"), i);
                var rangeMatcher = matcher.RangeMatchers[i];
                var onMatch = rangeMatcher.OnMatch is { } m ? OnMatch(m, FieldPath.Field(rangePath, "on_match")) : Missing(FieldPath.Field(rangePath, "on_match"));
                ok &= onMatch is not null;
                for (var r = 0; r < rangeMatcher.Ranges.Count; r++)
                {
                    if (Range(rangeMatcher.Ranges[r], FieldPath.Index(FieldPath.Field(rangePath, "ranges"), r)) is { } range)
                    {
                        entries.Add((range, onMatch!, rangeMatcher.Exclusive));
                    }
                    else
                    {
                        ok = false;
                    }
                }
            }

            return ok ? new IpNode(input, [.. entries.OrderByDescending(e => e.Item1.Length)], onNoMatch) : null;
        }

        private Predicate? Predicate(XdsMatcher.Matcher.Types.MatcherList.Types.Predicate? predicate, string path)
        {
            if (predicate is null)
            {
                errors.Add(path, "a predicate must be set");
                return null;
            }

            switch (predicate.MatchTypeCase)
            {
                case XdsMatcher.Matcher.Types.MatcherList.Types.Predicate.MatchTypeOneofCase.SinglePredicate:
                    return Single(predicate.SinglePredicate, FieldPath.Field(path, "single_predicate"));
                case XdsMatcher.Matcher.Types.MatcherList.Types.Predicate.MatchTypeOneofCase.OrMatcher:
                    return Many(predicate.OrMatcher.Predicate, FieldPath.Field(FieldPath.Field(path, "or_matcher"), "predicate"), all: false);
                case XdsMatcher.Matcher.Types.MatcherList.Types.Predicate.MatchTypeOneofCase.AndMatcher:
                    return Many(predicate.AndMatcher.Predicate, FieldPath.Field(FieldPath.Field(path, "and_matcher"), "predicate"), all: true);
                case XdsMatcher.Matcher.Types.MatcherList.Types.Predicate.MatchTypeOneofCase.NotMatcher:
                    return Predicate(predicate.NotMatcher, FieldPath.Field(path, "not_matcher")) is { } inner ? new NotPredicate(inner) : null;
                default:
                    errors.Add(path, "one of single_predicate, or_matcher, and_matcher or not_matcher must be set");
                    return null;
            }
        }

        private Predicate? Many(Google.Protobuf.Collections.RepeatedField<XdsMatcher.Matcher.Types.MatcherList.Types.Predicate> predicates, string path, bool all)
        {
            if (predicates.Count < 2)
            {
                // Envoy's validation: a predicate list has at least two entries.
                errors.Add(path, "at least two predicates are needed");
                return null;
            }

            var compiled = new Predicate[predicates.Count];
            var ok = true;
            for (var i = 0; i < compiled.Length; i++)
            {
                compiled[i] = Predicate(predicates[i], FieldPath.Index(path, i))!;
                ok &= compiled[i] is not null;
            }

            return !ok ? null : all ? new AllPredicate(compiled) : new AnyPredicate(compiled);
        }

        private Predicate? Single(XdsMatcher.Matcher.Types.MatcherList.Types.Predicate.Types.SinglePredicate single, string path)
        {
            if (Input(single.Input, FieldPath.Field(path, "input")) is not { } input)
            {
                return null;
            }

            switch (single.MatcherCase)
            {
                case XdsMatcher.Matcher.Types.MatcherList.Types.Predicate.Types.SinglePredicate.MatcherOneofCase.ValueMatch:
                {
                    // xds's StringMatcher has Envoy's fields and numbers: read as Envoy's, compiled as a route's.
                    var envoyMatcher = Envoy.Type.Matcher.V3.StringMatcher.Parser.ParseFrom(single.ValueMatch.ToByteString());
                    return CompiledStringMatcher.Create(envoyMatcher, errors, FieldPath.Field(path, "value_match")) is { } matcher ? new StringPredicate(input, matcher) : null;
                }

                case XdsMatcher.Matcher.Types.MatcherList.Types.Predicate.Types.SinglePredicate.MatcherOneofCase.CustomMatch:
                {
                    var typedPath = FieldPath.Field(FieldPath.Field(path, "custom_match"), "typed_config");
                    var typed = single.CustomMatch.TypedConfig;
                    if (!typed.Is(Envoy.Extensions.Matching.InputMatchers.Ip.V3.Ip.Descriptor))
                    {
                        errors.Add(typedPath, $"input matcher {TypeName(typed)} is not supported for filter chains; use envoy.extensions.matching.input_matchers.ip.v3.Ip");
                        return null;
                    }

                    if (!IsIp(input))
                    {
                        errors.Add(typedPath, "the ip input matcher needs an IP input (destination, source or direct source IP)");
                        return null;
                    }

                    var ip = typed.Unpack<Envoy.Extensions.Matching.InputMatchers.Ip.V3.Ip>();
                    var ranges = new List<IpPrefix>();
                    for (var i = 0; i < ip.CidrRanges.Count; i++)
                    {
                        if (!IpPrefix.TryParse(ip.CidrRanges[i], FieldPath.Index(FieldPath.Field(typedPath, "cidr_ranges"), i), errors, out var range))
                        {
                            return null;
                        }

                        ranges.Add(range);
                    }

                    if (ranges.Count == 0)
                    {
                        errors.Add(FieldPath.Field(typedPath, "cidr_ranges"), "at least one range is needed");
                        return null;
                    }

                    return new IpPredicate(input, [.. ranges]);
                }

                default:
                    errors.Add(path, "one of value_match or custom_match must be set");
                    return null;
            }
        }

        private OnMatch? OnMatch(XdsMatcher.Matcher.Types.OnMatch onMatch, string path)
        {
            switch (onMatch.OnMatchCase)
            {
                case XdsMatcher.Matcher.Types.OnMatch.OnMatchOneofCase.Matcher:
                    return Matcher(onMatch.Matcher, FieldPath.Field(path, "matcher")) is { } nested ? new OnMatch(null, nested) : null;
                case XdsMatcher.Matcher.Types.OnMatch.OnMatchOneofCase.Action:
                {
                    var typedPath = FieldPath.Field(FieldPath.Field(path, "action"), "typed_config");
                    var typed = onMatch.Action.TypedConfig;
                    if (typed is null || !typed.Is(StringValue.Descriptor))
                    {
                        errors.Add(typedPath, $"the action must be a google.protobuf.StringValue naming a filter chain, not {(typed is null ? "nothing" : TypeName(typed))}");
                        return null;
                    }

                    var name = typed.Unpack<StringValue>().Value;
                    if (!chains.ContainsKey(name))
                    {
                        errors.Warn(typedPath, $"no filter chain is named '{name}': a connection this selects gets the default filter chain, or is closed without one");
                    }

                    return new OnMatch(name, null);
                }

                default:
                    errors.Add(path, "one of matcher or action must be set");
                    return null;
            }
        }

        private OnMatch? Missing(string path)
        {
            errors.Add(path, "on_match must be set");
            return null;
        }

        private InputKind? Input(global::Xds.Core.V3.TypedExtensionConfig? input, string path)
        {
            var typed = input?.TypedConfig;
            if (typed is null)
            {
                errors.Add(path, "an input must be set");
                return null;
            }

            var name = TypeName(typed);
            const string Package = "envoy.extensions.matching.common_inputs.network.v3.";
            var index = name.StartsWith(Package, StringComparison.Ordinal) ? Array.IndexOf(s_inputs, name[Package.Length..]) : -1;
            if (index < 0)
            {
                errors.Add(FieldPath.Field(path, "typed_config"),
                    $"input {name} is not supported for filter chains; supported: {string.Join(", ", s_inputs.Select(i => Package + i))}");
                return null;
            }

            return (InputKind)index;
        }

        private IpPrefix? Range(global::Xds.Core.V3.CidrRange range, string path)
        {
            // xds's CidrRange has Envoy's fields and numbers.
            var envoyRange = Envoy.Config.Core.V3.CidrRange.Parser.ParseFrom(range.ToByteString());
            return IpPrefix.TryParse(envoyRange, path, errors, out var prefix) ? prefix : null;
        }

        private static string TypeName(Any any) => Any.GetTypeName(any.TypeUrl);
    }
}
