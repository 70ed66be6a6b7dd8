using System.Net;
using Legate.Config;
using Legate.Network.FilterChainMatching;
using EnvoyListener = Envoy.Config.Listener.V3.Listener;

namespace Legate.Tests.Network.FilterChainMatching;

/// <summary>
/// A compiled listener for tests: chains are named in the YAML and <see cref="Select"/> answers
/// with the chosen chain's name, "&lt;default&gt;" or "&lt;none&gt;", so tables read like the config.
/// </summary>
internal sealed class ChainSelector
{
    public const string Default = "<default>";
    public const string None = "<none>";
    public const string ListenerPath = "static_resources.listeners[0]";

    private readonly EnvoyListener _listener;

    private ChainSelector(EnvoyListener listener, FilterChainMatcher matcher)
    {
        _listener = listener;
        Matcher = matcher;
    }

    public FilterChainMatcher Matcher { get; }

    /// <summary>Parses a listener (name and address added) from YAML holding filter_chains etc.</summary>
    public static EnvoyListener Parse(string yaml)
    {
        var errors = new ConfigErrors();
        var text = "name: test\naddress: {socket_address: {address: 0.0.0.0, port_value: 10000}}\n" + yaml;
        var listener = new ProtoConverter(errors).Convert<EnvoyListener>(ConfigDocument.Parse(text, ConfigFormat.Yaml));
        Assert.Empty(errors.Errors);
        return listener;
    }

    /// <summary>Compiles <paramref name="yaml"/>, which must be valid and give no warning.</summary>
    public static ChainSelector Compile(string yaml) => Compile(Parse(yaml));

    public static ChainSelector Compile(EnvoyListener listener)
    {
        var errors = new ConfigErrors();
        var matcher = FilterChainMatcher.Compile(listener, ListenerPath, errors);
        Assert.Empty(errors.Errors);
        Assert.Empty(errors.Warnings);
        Assert.NotNull(matcher);
        return new ChainSelector(listener, matcher);
    }

    /// <summary>The errors and warnings of compiling <paramref name="yaml"/>, as "path: message" lines.</summary>
    public static (string[] Errors, string[] Warnings, FilterChainMatcher? Matcher) Problems(string yaml) => Problems(Parse(yaml));

    public static (string[] Errors, string[] Warnings, FilterChainMatcher? Matcher) Problems(EnvoyListener listener)
    {
        var errors = new ConfigErrors();
        var matcher = FilterChainMatcher.Compile(listener, ListenerPath, errors);
        return ([.. errors.Errors.Select(e => e.ToString())], [.. errors.Warnings.Select(e => e.ToString())], matcher);
    }

    public static ConnectionMatchInfo Connection(
        string local = "10.0.0.1:443",
        string remote = "192.0.2.7:50000",
        string? direct = null,
        string sni = "",
        string? transport = null,
        string[]? alpn = null) =>
        new(IPEndPoint.Parse(local), IPEndPoint.Parse(remote), direct is null ? null : IPEndPoint.Parse(direct))
        {
            RequestedServerName = sni,
            TransportProtocol = transport ?? string.Empty,
            ApplicationProtocols = alpn is null ? default : [.. alpn],
        };

    public string Select(
        string local = "10.0.0.1:443",
        string remote = "192.0.2.7:50000",
        string? direct = null,
        string sni = "",
        string? transport = null,
        string[]? alpn = null) =>
        NameOf(Matcher.Match(Connection(local, remote, direct, sni, transport, alpn)));

    public string NameOf(int index) => index switch
    {
        FilterChainMatcher.DefaultFilterChain => Default,
        FilterChainMatcher.NoMatch => None,
        _ => _listener.FilterChains[index].Name,
    };
}
