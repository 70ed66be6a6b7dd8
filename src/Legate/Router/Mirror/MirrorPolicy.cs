using Legate.Config;

namespace Legate.Router.Mirror;

/// <summary>
/// One compiled <c>request_mirror_policies</c> entry (route, or the virtual host's when the route
/// has none): the shadow cluster (fixed or named by a header), the share of requests mirrored
/// (<c>runtime_fraction</c>: its runtime key's live value, else its default value) and whether the authority gets
/// Envoy's <c>-shadow</c> suffix.
/// </summary>
internal sealed class MirrorPolicy
{
    private readonly uint _numerator;
    private readonly uint _denominator;

    private MirrorPolicy(string cluster, string? clusterHeader, uint numerator, uint denominator, bool appendSuffix)
    {
        Cluster = cluster;
        ClusterHeader = clusterHeader;
        _numerator = numerator;
        _denominator = denominator;
        AppendShadowSuffix = appendSuffix;
    }

    public string Cluster { get; }

    /// <summary>The (lower-case) request header naming the shadow cluster, or null.</summary>
    public string? ClusterHeader { get; }

    public bool AppendShadowSuffix { get; }

    /// <summary><c>trace_sampled</c> (default true): whether the shadow's "mirror" span is sampled.</summary>
    public bool TraceSampled { get; private init; } = true;

    /// <summary><c>runtime_fraction.runtime_key</c>: its live value replaces the default share (empty = none).</summary>
    public string RuntimeKey { get; private init; } = string.Empty;

    /// <summary>For explain and lint: the share mirrored, in percent.</summary>
    public double Percent => 100.0 * _numerator / _denominator;

    public static MirrorPolicy[]? Compile(Google.Protobuf.Collections.RepeatedField<Envoy.Config.Route.V3.RouteAction.Types.RequestMirrorPolicy> policies, string path, ConfigErrors errors)
    {
        if (policies.Count == 0)
        {
            return null;
        }

        var result = new MirrorPolicy[policies.Count];
        for (var i = 0; i < result.Length; i++)
        {
            var policy = policies[i];
            var policyPath = FieldPath.Index(path, i);
            if (policy.Cluster.Length == 0 && policy.ClusterHeader.Length == 0)
            {
                errors.Add(policyPath, "a request mirror policy needs cluster or cluster_header");
            }

            uint numerator = 100, denominator = 100;
            if (policy.RuntimeFraction?.DefaultValue is { } fraction)
            {
                numerator = fraction.Numerator;
                denominator = Legate.Runtime.RuntimeSnapshot.DenominatorValue(fraction.Denominator);
                numerator = Math.Min(numerator, denominator);
            }

            result[i] = new MirrorPolicy(policy.Cluster, policy.ClusterHeader.Length > 0 ? policy.ClusterHeader.ToLowerInvariant() : null, numerator, denominator, !policy.DisableShadowHostSuffixAppend)
            {
                TraceSampled = policy.TraceSampled ?? true,
                RuntimeKey = policy.RuntimeFraction?.RuntimeKey ?? string.Empty,
            };
        }

        return result;
    }

    /// <summary>
    /// Whether this request is mirrored, reading the live runtime. As Envoy's shouldShadow, decided on
    /// the stream's stable random value (<paramref name="streamRandom"/>: the x-request-id's, as for
    /// route runtime_fraction and weighted clusters), <c>value % denominator &lt; numerator</c>: a
    /// request id is always mirrored or never, by every proxy that shares the fraction.
    /// </summary>
    public bool Sampled(Legate.Runtime.RuntimeSnapshot? runtime, ulong streamRandom)
    {
        if (runtime is not null && RuntimeKey.Length > 0)
        {
            // Envoy's featureEnabled: a percentage or FractionalPercent under the key replaces the default.
            return runtime.FeatureEnabled(RuntimeKey, _numerator, _denominator, streamRandom);
        }

        return _numerator >= _denominator || streamRandom % _denominator < _numerator;
    }

    /// <summary>Envoy's shadow authority: <c>-shadow</c> after the host, before any port.</summary>
    public static string ShadowAuthority(string authority)
    {
        var portStart = authority.StartsWith('[') ? authority.IndexOf("]:", StringComparison.Ordinal) + 1 : authority.LastIndexOf(':');
        return portStart > 0 ? string.Concat(authority.AsSpan(0, portStart), "-shadow", authority.AsSpan(portStart)) : authority + "-shadow";
    }
}
