using Google.Protobuf.WellKnownTypes;
using Legate.Stats;
using Legate.Tls;

namespace Legate.Upstream;

/// <summary>
/// One entry of a cluster's <c>transport_socket_matches</c>: hosts whose
/// <c>envoy.transport_socket_match</c> metadata holds every field of <see cref="Match"/> (same
/// values) connect with <see cref="Tls"/> (null = plaintext). Counted in
/// <c>cluster.&lt;name&gt;.&lt;match name&gt;.total_match_count</c>.
/// </summary>
internal sealed class TransportSocketMatch(string name, Struct match, ClientTlsContext? tls, Counter totalMatchCount)
{
    /// <summary>The metadata key Envoy reads on endpoints.</summary>
    public const string MetadataKey = "envoy.transport_socket_match";

    public string Name { get; } = name;

    public Struct Match { get; } = match;

    public ClientTlsContext? Tls { get; } = tls;

    public Counter TotalMatchCount { get; } = totalMatchCount;

    /// <summary>True when every field of <see cref="Match"/> is in <paramref name="metadata"/> with an equal value (an empty match takes every host).</summary>
    public bool Matches(Envoy.Config.Core.V3.Metadata? metadata)
    {
        if (Match.Fields.Count == 0)
        {
            return true;
        }

        if (metadata is null || !metadata.FilterMetadata.TryGetValue(MetadataKey, out var values))
        {
            return false;
        }

        foreach (var (key, expected) in Match.Fields)
        {
            if (!values.Fields.TryGetValue(key, out var actual) || !actual.Equals(expected))
            {
                return false;
            }
        }

        return true;
    }
}
