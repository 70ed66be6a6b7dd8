using System.IO.Hashing;
using System.Text;
using Envoy.Config.Route.V3;
using Legate.Config;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Router.Actions;

namespace Legate.Router.Hashing;

/// <summary>
/// A route's compiled <c>hash_policy</c> list (Envoy's HashPolicyImpl): each policy hashes one
/// request property with xxHash64; results combine as Envoy does (the running hash rotated left
/// by one, XOR the next), and a <c>terminal</c> policy that produced a hash ends the walk. The
/// result feeds <see cref="Upstream.LoadBalancerContext.HashKey"/> for consistent-hash load balancers.
/// </summary>
internal sealed class HashPolicy
{
    private readonly Policy[] _policies;

    private HashPolicy(Policy[] policies) => _policies = policies;

    /// <summary>True when some policy is a cookie with a ttl: a missing cookie is then generated (Set-Cookie).</summary>
    public bool GeneratesCookies => _policies.Any(p => p.Kind == Kind.Cookie && p.Ttl is not null);

    public static HashPolicy? Compile(Google.Protobuf.Collections.RepeatedField<RouteAction.Types.HashPolicy> config, string path, ConfigErrors errors)
    {
        if (config.Count == 0)
        {
            return null;
        }

        var policies = new List<Policy>(config.Count);
        for (var i = 0; i < config.Count; i++)
        {
            var policy = config[i];
            var policyPath = FieldPath.Index(path, i);
            switch (policy.PolicySpecifierCase)
            {
                case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.Header:
                    var rewrite = policy.Header.RegexRewrite is { } regexRewrite ? PathRewrite.ForRegex(regexRewrite, FieldPath.Field(FieldPath.Field(policyPath, "header"), "regex_rewrite"), errors) : null;
                    policies.Add(new Policy(Kind.Header, policy.Header.HeaderName.ToLowerInvariant(), policy.Terminal) { Rewrite = rewrite });
                    break;
                case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.Cookie:
                    var cookie = policy.Cookie;
                    policies.Add(new Policy(Kind.Cookie, cookie.Name, policy.Terminal)
                    {
                        Ttl = cookie.Ttl?.ToTimeSpan(),
                        CookiePath = cookie.Path,
                        Attributes = cookie.Attributes.Select(a => a.Value.Length > 0 ? $"{a.Name}={a.Value}" : a.Name).ToArray(),
                    });
                    break;
                case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.ConnectionProperties:
                    if (policy.ConnectionProperties.SourceIp)
                    {
                        policies.Add(new Policy(Kind.SourceIp, string.Empty, policy.Terminal));
                    }

                    break;
                case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.QueryParameter:
                    policies.Add(new Policy(Kind.QueryParameter, policy.QueryParameter.Name, policy.Terminal));
                    break;
                case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.FilterState:
                    // No filter state objects exist yet, so this policy never produces a hash (as in Envoy
                    // when the key is absent).
                    policies.Add(new Policy(Kind.FilterState, policy.FilterState.Key, policy.Terminal));
                    break;
            }
        }

        return new HashPolicy(policies.ToArray());
    }

    /// <summary>
    /// The request's hash, or null. A cookie policy with a ttl whose cookie is missing generates one
    /// (from the client address, as Envoy) and returns it in <paramref name="setCookie"/> for the response.
    /// </summary>
    public ulong? Generate(HttpStream stream, HttpRequestHead head, out string? setCookie) =>
        Generate(stream.Info.DownstreamRemoteAddress, head, out setCookie);

    /// <summary>As <see cref="Generate(HttpStream, HttpRequestHead, out string?)"/>, with the client address given.</summary>
    public ulong? Generate(System.Net.IPEndPoint? remote, HttpRequestHead head, out string? setCookie)
    {
        setCookie = null;
        ulong? hash = null;
        foreach (var policy in _policies)
        {
            ulong? next = policy.Kind switch
            {
                Kind.Header => HeaderHash(head, policy),
                Kind.Cookie => CookieHash(remote, head, policy, ref setCookie),
                Kind.SourceIp => remote is not null ? Hash(remote.Address.ToString()) : null,
                Kind.QueryParameter => QueryParameter(head.Path, policy.Name) is { } value ? Hash(value) : null,
                _ => null,
            };

            if (next is { } value2)
            {
                hash = hash is { } running ? ((running << 1) | (running >> 63)) ^ value2 : value2;
            }

            if (policy.Terminal && hash is not null)
            {
                break;
            }
        }

        return hash;
    }

    public static ulong Hash(string value) => XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(value));

    private static ulong? HeaderHash(HttpRequestHead head, Policy policy)
    {
        string? value = policy.Name switch
        {
            ":path" => head.Path,
            ":method" => head.Method,
            ":authority" => Encoding.Latin1.GetString(head.Authority),
            _ => null,
        };

        if (value is null)
        {
            // Several values of one header hash together, in sorted order, as Envoy does.
            List<string>? values = null;
            for (var i = head.Headers.IndexOf(policy.Name.AsSpan()); i >= 0; i = head.Headers.IndexOf(policy.Name.AsSpan(), i + 1))
            {
                (values ??= new List<string>(1)).Add(head.Headers.GetValue(i));
            }

            if (values is null)
            {
                return null;
            }

            values.Sort(StringComparer.Ordinal);
            value = string.Concat(values);
        }

        if (policy.Rewrite is { } rewrite)
        {
            value = rewrite.Apply(value);
        }

        return Hash(value);
    }

    private static ulong? CookieHash(System.Net.IPEndPoint? remote, HttpRequestHead head, Policy policy, ref string? setCookie)
    {
        if (CookieValue(head.Headers, policy.Name) is { } existing)
        {
            return Hash(existing);
        }

        if (policy.Ttl is not { } ttl)
        {
            return null;
        }

        // Envoy derives the new cookie from the client address, so one client keeps one value.
        var address = remote is not null ? Network.SocketAddresses.Format(remote) : string.Empty;
        var generated = Hash(address).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
        var cookie = new StringBuilder().Append(policy.Name).Append("=\"").Append(generated).Append('"');
        if (ttl > TimeSpan.Zero)
        {
            cookie.Append("; Max-Age=").Append(((long)ttl.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        if (policy.CookiePath.Length > 0)
        {
            cookie.Append("; Path=").Append(policy.CookiePath);
        }

        foreach (var attribute in policy.Attributes)
        {
            cookie.Append("; ").Append(attribute);
        }

        cookie.Append("; HttpOnly");
        setCookie = cookie.ToString();
        return Hash(generated);
    }

    /// <summary>The value of cookie <paramref name="name"/> in the request's cookie headers, or null.</summary>
    internal static string? CookieValue(HttpHeaderMap headers, string name)
    {
        for (var i = headers.IndexOf("cookie"u8); i >= 0; i = headers.IndexOf("cookie"u8, i + 1))
        {
            foreach (var part in headers.GetValue(i).Split(';'))
            {
                var pair = part.Trim();
                var equals = pair.IndexOf('=');
                if (equals > 0 && string.Equals(pair[..equals], name, StringComparison.Ordinal))
                {
                    var value = pair[(equals + 1)..];
                    return value.Length >= 2 && value[0] == '"' && value[^1] == '"' ? value[1..^1] : value;
                }
            }
        }

        return null;
    }

    /// <summary>The first value of query parameter <paramref name="name"/> (not decoded, as Envoy), or null.</summary>
    internal static string? QueryParameter(string path, string name)
    {
        var query = path.IndexOf('?');
        if (query < 0)
        {
            return null;
        }

        foreach (var pair in path[(query + 1)..].Split('&'))
        {
            var equals = pair.IndexOf('=');
            var key = equals < 0 ? pair : pair[..equals];
            if (string.Equals(key, name, StringComparison.Ordinal))
            {
                return equals < 0 ? string.Empty : pair[(equals + 1)..];
            }
        }

        return null;
    }

    private enum Kind
    {
        Header,
        Cookie,
        SourceIp,
        QueryParameter,
        FilterState,
    }

    private sealed record Policy(Kind Kind, string Name, bool Terminal)
    {
        public PathRewrite? Rewrite { get; init; }

        public TimeSpan? Ttl { get; init; }

        public string CookiePath { get; init; } = string.Empty;

        public string[] Attributes { get; init; } = [];
    }
}
