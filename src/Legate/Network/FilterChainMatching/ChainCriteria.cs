using System.Globalization;
using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Google.Protobuf.Collections;
using Legate.Config;
using SourceType = Envoy.Config.Listener.V3.FilterChainMatch.Types.ConnectionSourceType;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// The validated, normalized filter_chain_match of one chain: values deduplicated, server names
/// lowercased, CIDR host bits cleared. An empty list (or 0, "", ANY) means "not set".
/// </summary>
internal sealed class ChainCriteria
{
    private ChainCriteria(FilterChainMatch match, string path, ConfigErrors errors)
    {
        if (match.DestinationPort is { } port)
        {
            if (port is < 1 or > 65535)
            {
                errors.Add(FieldPath.Field(path, "destination_port"), $"{port.ToString(CultureInfo.InvariantCulture)} is not a valid port (1-65535)");
            }
            else
            {
                DestinationPort = (int)port;
            }
        }

        DestinationPrefixes = Prefixes(match.PrefixRanges, FieldPath.Field(path, "prefix_ranges"), errors);
        ServerNames = ServerNamesOf(match.ServerNames, FieldPath.Field(path, "server_names"), errors);
        TransportProtocol = match.TransportProtocol;
        ApplicationProtocols = ApplicationProtocolsOf(match.ApplicationProtocols, FieldPath.Field(path, "application_protocols"), errors);
        DirectSourcePrefixes = Prefixes(match.DirectSourcePrefixRanges, FieldPath.Field(path, "direct_source_prefix_ranges"), errors);
        if (match.SourceType is SourceType.Any or SourceType.SameIpOrLoopback or SourceType.External)
        {
            SourceType = match.SourceType;
        }
        else
        {
            errors.Add(FieldPath.Field(path, "source_type"), $"unknown source_type {((int)match.SourceType).ToString(CultureInfo.InvariantCulture)}: expected ANY, SAME_IP_OR_LOOPBACK or EXTERNAL");
        }

        SourcePrefixes = Prefixes(match.SourcePrefixRanges, FieldPath.Field(path, "source_prefix_ranges"), errors);
        SourcePorts = SourcePortsOf(match.SourcePorts, FieldPath.Field(path, "source_ports"), errors);

        // Envoy refuses these rather than ignoring them: they are declared but never implemented.
        if (match.AddressSuffix.Length > 0)
        {
            errors.Add(FieldPath.Field(path, "address_suffix"), "address_suffix is not implemented (Envoy rejects it too)");
        }

        if (match.SuffixLen is not null)
        {
            errors.Add(FieldPath.Field(path, "suffix_len"), "suffix_len is not implemented (Envoy rejects it too)");
        }
    }

    /// <summary>0 when not set.</summary>
    public int DestinationPort { get; }

    public IpPrefix[] DestinationPrefixes { get; }

    /// <summary>Lowercased; wildcards keep their "*." prefix.</summary>
    public string[] ServerNames { get; }

    /// <summary>"" when not set.</summary>
    public string TransportProtocol { get; }

    public string[] ApplicationProtocols { get; }

    public IpPrefix[] DirectSourcePrefixes { get; }

    public SourceType SourceType { get; }

    public IpPrefix[] SourcePrefixes { get; }

    public int[] SourcePorts { get; }

    /// <summary>Reads <paramref name="match"/> (null: match everything); errors go under <paramref name="path"/>.</summary>
    public static ChainCriteria Parse(FilterChainMatch? match, string path, ConfigErrors errors) =>
        new(match ?? new FilterChainMatch(), path, errors);

    /// <summary>True when both chains match exactly the same connections (the same sets of values).</summary>
    public bool HasSameRulesAs(ChainCriteria other) =>
        DestinationPort == other.DestinationPort
        && SetEquals(DestinationPrefixes, other.DestinationPrefixes)
        && SetEquals(ServerNames, other.ServerNames)
        && TransportProtocol == other.TransportProtocol
        && SetEquals(ApplicationProtocols, other.ApplicationProtocols)
        && SetEquals(DirectSourcePrefixes, other.DirectSourcePrefixes)
        && SourceType == other.SourceType
        && SetEquals(SourcePrefixes, other.SourcePrefixes)
        && SetEquals(SourcePorts, other.SourcePorts);

    /// <summary>
    /// The connections this chain and <paramref name="other"/> both match, known to overlap: for
    /// each criterion either sets, the values both accept, e.g. <c>server_names "b.example.com", source_ports 2</c>.
    /// </summary>
    public string DescribeOverlap(ChainCriteria other)
    {
        var parts = new List<string>();
        if (DestinationPort != 0 || other.DestinationPort != 0)
        {
            parts.Add("destination_port " + Math.Max(DestinationPort, other.DestinationPort).ToString(CultureInfo.InvariantCulture));
        }

        DescribeRanges(parts, "prefix_ranges", DestinationPrefixes, other.DestinationPrefixes);
        DescribeValues(parts, "server_names", ServerNames, other.ServerNames, n => "\"" + n + "\"");
        if (TransportProtocol.Length > 0)
        {
            parts.Add("transport_protocol \"" + TransportProtocol + "\"");
        }

        DescribeValues(parts, "application_protocols", ApplicationProtocols, other.ApplicationProtocols, p => "\"" + p + "\"");
        DescribeRanges(parts, "direct_source_prefix_ranges", DirectSourcePrefixes, other.DirectSourcePrefixes);
        if (SourceType != SourceType.Any)
        {
            parts.Add("source_type " + (SourceType == SourceType.External ? "EXTERNAL" : "SAME_IP_OR_LOOPBACK"));
        }

        DescribeRanges(parts, "source_prefix_ranges", SourcePrefixes, other.SourcePrefixes);
        DescribeValues(parts, "source_ports", SourcePorts, other.SourcePorts, p => p.ToString(CultureInfo.InvariantCulture));
        return string.Join(", ", parts);
    }

    private static void DescribeValues<T>(List<string> parts, string field, T[] mine, T[] theirs, Func<T, string> format)
    {
        if (mine.Length > 0 && theirs.Length > 0)
        {
            parts.Add(field + " " + string.Join(" or ", mine.Intersect(theirs).Select(format)));
        }
    }

    private static void DescribeRanges(List<string> parts, string field, IpPrefix[] mine, IpPrefix[] theirs)
    {
        if (mine.Length == 0 && theirs.Length == 0)
        {
            return;
        }

        // No ranges is 0.0.0.0/0 and ::/0, as in Envoy.
        IpPrefix[] catchAll = [IpPrefix.AnyV4, IpPrefix.AnyV6];
        var common = (mine.Length == 0 ? catchAll : mine).Intersect(theirs.Length == 0 ? catchAll : theirs);
        var text = field + " " + string.Join(" or ", common);
        parts.Add(mine.Length == 0 || theirs.Length == 0 ? text + " (the same as no " + field + ")" : text);
    }

    private static bool SetEquals<T>(T[] a, T[] b) => new HashSet<T>(a).SetEquals(b);

    private static IpPrefix[] Prefixes(RepeatedField<CidrRange> ranges, string path, ConfigErrors errors)
    {
        var prefixes = new List<IpPrefix>(ranges.Count);
        for (var i = 0; i < ranges.Count; i++)
        {
            if (IpPrefix.TryParse(ranges[i], FieldPath.Index(path, i), errors, out var prefix) && !prefixes.Contains(prefix))
            {
                prefixes.Add(prefix);
            }
        }

        return [.. prefixes];
    }

    private static string[] ServerNamesOf(RepeatedField<string> names, string path, ConfigErrors errors)
    {
        var result = new List<string>(names.Count);
        for (var i = 0; i < names.Count; i++)
        {
            var name = names[i];
            var namePath = FieldPath.Index(path, i);
            if (name.Length == 0)
            {
                // Envoy would file "" under its catch-all key, silently matching every name.
                errors.Add(namePath, "an empty server name is not allowed; omit server_names to match any server name");
                continue;
            }

            if (name == "*")
            {
                errors.Add(namePath, "\"*\" is not supported in server_names (as in Envoy); omit server_names to match any server name");
                continue;
            }

            // Only a whole leading label may be a wildcard: "*.example.com". Envoy rejects the
            // other forms ("*w.example.com", "www.*.com"); "*.*.com" and "*." could never match.
            var wildcard = name.StartsWith("*.", StringComparison.Ordinal);
            if (name.IndexOf('*', wildcard ? 1 : 0) >= 0 || name == "*.")
            {
                errors.Add(namePath, $"partial wildcards are not supported in \"server_names\": \"{name}\"; only a leading \"*.\" is, as in *.example.com");
                continue;
            }

            var lower = name.ToLowerInvariant();
            if (!result.Contains(lower))
            {
                result.Add(lower);
            }
        }

        return [.. result];
    }

    private static string[] ApplicationProtocolsOf(RepeatedField<string> protocols, string path, ConfigErrors errors)
    {
        var result = new List<string>(protocols.Count);
        for (var i = 0; i < protocols.Count; i++)
        {
            if (protocols[i].Length == 0)
            {
                // Envoy would file "" under its catch-all key, silently matching every client.
                errors.Add(FieldPath.Index(path, i), "an empty application protocol is not allowed; omit application_protocols to match any");
            }
            else if (!result.Contains(protocols[i]))
            {
                result.Add(protocols[i]);
            }
        }

        return [.. result];
    }

    private static int[] SourcePortsOf(RepeatedField<uint> ports, string path, ConfigErrors errors)
    {
        var result = new List<int>(ports.Count);
        for (var i = 0; i < ports.Count; i++)
        {
            if (ports[i] is < 1 or > 65535)
            {
                errors.Add(FieldPath.Index(path, i), $"{ports[i].ToString(CultureInfo.InvariantCulture)} is not a valid port (1-65535)");
            }
            else if (!result.Contains((int)ports[i]))
            {
                result.Add((int)ports[i]);
            }
        }

        return [.. result];
    }
}
