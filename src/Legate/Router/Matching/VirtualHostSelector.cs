using Envoy.Config.Route.V3;
using Legate.Config;

namespace Legate.Router.Matching;

/// <summary>
/// Picks the virtual host for a request's :authority with Envoy's precedence: exact domain, then
/// suffix wildcards (<c>*.example.com</c>, <c>*-bar.example.com</c>) longest first, then prefix
/// wildcards (<c>foo.*</c>) longest first, then <c>*</c>. Domains compare case-insensitively;
/// a domain written with a port only matches that host:port, unless
/// ignore_port_in_host_matching strips the port from the request first.
/// </summary>
internal sealed class VirtualHostSelector
{
    private readonly Dictionary<string, CompiledVirtualHost> _exact;

    // Grouped by wildcard length, longest first, so the first hit is the longest match.
    private readonly (int Length, Dictionary<string, CompiledVirtualHost> Hosts)[] _suffixes;
    private readonly (int Length, Dictionary<string, CompiledVirtualHost> Hosts)[] _prefixes;
    private readonly CompiledVirtualHost? _default;
    private readonly bool _ignorePort;

    private VirtualHostSelector(
        Dictionary<string, CompiledVirtualHost> exact,
        SortedDictionary<int, Dictionary<string, CompiledVirtualHost>> suffixes,
        SortedDictionary<int, Dictionary<string, CompiledVirtualHost>> prefixes,
        CompiledVirtualHost? defaultHost,
        bool ignorePort,
        CompiledVirtualHost[] virtualHosts)
    {
        _exact = exact;
        _suffixes = Descending(suffixes);
        _prefixes = Descending(prefixes);
        _default = defaultHost;
        _ignorePort = ignorePort;
        VirtualHosts = virtualHosts;
    }

    public IReadOnlyList<CompiledVirtualHost> VirtualHosts { get; }

    /// <summary>Compiles the virtual hosts of <paramref name="config"/>; errors use paths relative to <paramref name="path"/> (the RouteConfiguration).</summary>
    public static VirtualHostSelector Create(RouteConfiguration config, ConfigErrors errors, string path = "")
    {
        var exact = new Dictionary<string, CompiledVirtualHost>(StringComparer.Ordinal);
        var suffixes = new SortedDictionary<int, Dictionary<string, CompiledVirtualHost>>();
        var prefixes = new SortedDictionary<int, Dictionary<string, CompiledVirtualHost>>();
        CompiledVirtualHost? defaultHost = null;
        var hosts = new CompiledVirtualHost[config.VirtualHosts.Count];
        var hostsPath = FieldPath.Field(path, "virtual_hosts");
        for (var v = 0; v < hosts.Length; v++)
        {
            var vh = config.VirtualHosts[v];
            var vhPath = FieldPath.Index(hostsPath, v);
            var host = new CompiledVirtualHost(v, vh, RouteMatcher.Create(vh.Routes, errors, FieldPath.Field(vhPath, "routes")));
            hosts[v] = host;
            for (var d = 0; d < vh.Domains.Count; d++)
            {
                var domain = AsciiCase.Lower(vh.Domains[d]);
                var domainPath = FieldPath.Index(FieldPath.Field(vhPath, "domains"), d);
                if (domain == "*")
                {
                    if (defaultHost is not null)
                    {
                        errors.Add(domainPath, "Only a single wildcard domain is permitted in route " + config.Name);
                    }

                    defaultHost ??= host;
                    continue;
                }

                var star = domain.IndexOf('*');
                var lastStar = domain.LastIndexOf('*');
                if (star >= 0 && (star != lastStar || (star != 0 && star != domain.Length - 1)))
                {
                    // Envoy would silently treat such a domain as a literal that no Host header can equal.
                    errors.Add(domainPath, "Wildcard '*' is only permitted at the start or the end of domain " + domain + " in route " + config.Name);
                    continue;
                }

                bool added;
                if (star == 0)
                {
                    added = Group(suffixes, domain.Length - 1).TryAdd(domain[1..], host);
                }
                else if (star > 0)
                {
                    added = Group(prefixes, domain.Length - 1).TryAdd(domain[..^1], host);
                }
                else
                {
                    added = exact.TryAdd(domain, host);
                }

                if (!added)
                {
                    errors.Add(domainPath, "Only unique values for domains are permitted. Duplicate entry of domain " + domain + " in route " + config.Name);
                }
            }
        }

        return new VirtualHostSelector(exact, suffixes, prefixes, defaultHost, config.IgnorePortInHostMatching, hosts);
    }

    /// <summary>The virtual host for <paramref name="authority"/>, or null (Envoy answers 404 then).</summary>
    public CompiledVirtualHost? Select(string authority)
    {
        // Lower-case into a scratch buffer and look up by span, so selection allocates nothing.
        Span<char> buffer = authority.Length <= 256 ? stackalloc char[authority.Length] : new char[authority.Length];
        for (var i = 0; i < authority.Length; i++)
        {
            buffer[i] = AsciiCase.Lower(authority[i]);
        }

        ReadOnlySpan<char> host = buffer;
        if (_ignorePort && PortStart(host) is var portStart && portStart >= 0)
        {
            host = host[..portStart];
        }

        if (_exact.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(host, out var exact))
        {
            return exact;
        }

        foreach (var (length, hosts) in _suffixes)
        {
            // The '*' stands for at least one character, so "*.foo.com" does not match ".foo.com".
            if (length < host.Length && hosts.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(host[^length..], out var found))
            {
                return found;
            }
        }

        foreach (var (length, hosts) in _prefixes)
        {
            if (length < host.Length && hosts.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(host[..length], out var found))
            {
                return found;
            }
        }

        return _default;
    }

    /// <summary>Where the ":port" of a host starts, or -1; a colon inside "[v6]" is not a port.</summary>
    internal static int PortStart(ReadOnlySpan<char> host)
    {
        var colon = host.LastIndexOf(':');
        if (colon < 0)
        {
            return -1;
        }

        var v6End = host.LastIndexOf(']');
        return v6End < 0 || v6End < colon ? colon : -1;
    }

    private static Dictionary<string, CompiledVirtualHost> Group(SortedDictionary<int, Dictionary<string, CompiledVirtualHost>> groups, int length)
    {
        if (!groups.TryGetValue(length, out var group))
        {
            group = new Dictionary<string, CompiledVirtualHost>(StringComparer.Ordinal);
            groups.Add(length, group);
        }

        return group;
    }

    private static (int, Dictionary<string, CompiledVirtualHost>)[] Descending(SortedDictionary<int, Dictionary<string, CompiledVirtualHost>> groups)
    {
        var result = new (int, Dictionary<string, CompiledVirtualHost>)[groups.Count];
        var i = groups.Count;
        foreach (var (length, hosts) in groups)
        {
            result[--i] = (length, hosts);
        }

        return result;
    }
}
