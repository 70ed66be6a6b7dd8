using Envoy.Config.Route.V3;
using Legate.Config;

namespace Legate.Http;

/// <summary>
/// A compiled route configuration: picks the virtual host for a request's host, in Envoy's order:
/// exact domain, then the longest <c>*.suffix</c> wildcard, then the longest <c>prefix.*</c>
/// wildcard, then <c>*</c>. Hosts and domains compare case-insensitively.
/// </summary>
internal sealed class RouteTable
{
    /// <summary>Envoy's default for <c>max_direct_response_body_size_bytes</c>.</summary>
    private const uint DefaultMaxDirectResponseBodyBytes = 4096;

    private readonly Dictionary<string, VirtualHostEntry> _exact;
    private readonly KeyValuePair<string, VirtualHostEntry>[] _suffixes;
    private readonly KeyValuePair<string, VirtualHostEntry>[] _prefixes;
    private readonly VirtualHostEntry? _default;

    private RouteTable(
        Dictionary<string, VirtualHostEntry> exact,
        KeyValuePair<string, VirtualHostEntry>[] suffixes,
        KeyValuePair<string, VirtualHostEntry>[] prefixes,
        VirtualHostEntry? defaultHost,
        bool ignorePortInHostMatching)
    {
        _exact = exact;
        _suffixes = suffixes;
        _prefixes = prefixes;
        _default = defaultHost;
        IgnorePortInHostMatching = ignorePortInHostMatching;
    }

    /// <summary>A table with no virtual hosts: every request is answered 404 (NR).</summary>
    public static RouteTable Empty { get; } = new([], [], [], null, false);

    /// <summary>RouteConfiguration.ignore_port_in_host_matching.</summary>
    public bool IgnorePortInHostMatching { get; }

    public static RouteTable Compile(RouteConfiguration config, string path, ConfigErrors errors)
    {
        var maxBody = config.MaxDirectResponseBodySizeBytes ?? DefaultMaxDirectResponseBodyBytes;
        var exact = new Dictionary<string, VirtualHostEntry>(StringComparer.OrdinalIgnoreCase);
        var suffixes = new List<KeyValuePair<string, VirtualHostEntry>>();
        var prefixes = new List<KeyValuePair<string, VirtualHostEntry>>();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        VirtualHostEntry? defaultHost = null;

        for (var i = 0; i < config.VirtualHosts.Count; i++)
        {
            var vhostPath = FieldPath.Index(FieldPath.Field(path, "virtual_hosts"), i);
            var virtualHost = config.VirtualHosts[i];
            var entry = VirtualHostEntry.Compile(virtualHost, vhostPath, maxBody, errors);
            for (var j = 0; j < virtualHost.Domains.Count; j++)
            {
                var domain = virtualHost.Domains[j];
                var domainPath = FieldPath.Index(FieldPath.Field(vhostPath, "domains"), j);
                if (!seen.Add(domain))
                {
                    errors.Add(domainPath, $"domain \"{domain}\" is already used in this route configuration; domains must be unique");
                    continue;
                }

                if (domain == "*")
                {
                    defaultHost = entry;
                }
                else if (domain.StartsWith('*'))
                {
                    suffixes.Add(new(domain[1..].ToLowerInvariant(), entry));
                }
                else if (domain.EndsWith('*'))
                {
                    prefixes.Add(new(domain[..^1].ToLowerInvariant(), entry));
                }
                else
                {
                    exact[domain] = entry;
                }
            }
        }

        // Longest wildcard first; stable for equal lengths so the first declared wins.
        var bySuffix = suffixes.OrderByDescending(p => p.Key.Length).ToArray();
        var byPrefix = prefixes.OrderByDescending(p => p.Key.Length).ToArray();
        return new RouteTable(exact, bySuffix, byPrefix, defaultHost, config.IgnorePortInHostMatching);
    }

    /// <summary>The virtual host for <paramref name="host"/> (the Host/:authority value), or null (NR).</summary>
    public VirtualHostEntry? FindVirtualHost(string host)
    {
        if (IgnorePortInHostMatching)
        {
            host = HostWithoutPort(host);
        }

        if (_exact.TryGetValue(host, out var exact))
        {
            return exact;
        }

        // A wildcard stands for at least one character: "*.foo.com" does not match ".foo.com".
        foreach (var (suffix, entry) in _suffixes)
        {
            if (host.Length > suffix.Length && host.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                return entry;
            }
        }

        foreach (var (prefix, entry) in _prefixes)
        {
            if (host.Length > prefix.Length && host.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                return entry;
            }
        }

        return _default;
    }

    /// <summary>Removes a trailing <c>:port</c>, leaving IPv6 literals (<c>[::1]</c>) intact.</summary>
    public static string HostWithoutPort(string host)
    {
        var colon = host.LastIndexOf(':');
        if (colon < 0 || host.IndexOf(']', colon) >= 0 || (host.IndexOf(':') != colon && !host.StartsWith('[')))
        {
            return host;
        }

        return host[..colon];
    }
}
