using Envoy.Config.Core.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Upstream;

namespace Legate.Router.Retry;

/// <summary>
/// A retry policy's <c>retry_host_predicate</c> list, compiled: on a retry the load balancer picks
/// again (up to host_selection_retry_max_attempts times) while any predicate rejects the host.
/// <c>previous_hosts</c> rejects hosts already tried; <c>omit_canary_hosts</c> rejects canary
/// hosts (endpoint metadata <c>envoy.lb</c> <c>canary: true</c>); <c>omit_host_metadata</c> rejects
/// hosts whose <c>envoy.lb</c> metadata has every key/value of its <c>metadata_match</c> (a list
/// value matches when any element does, as Envoy's metadataLabelMatch with list_as_any).
/// </summary>
internal sealed class RetryHostPredicates
{
    private const string EnvoyLb = "envoy.lb";

    private RetryHostPredicates(bool previousHosts, bool omitCanary, KeyValuePair<string, Value>[]? omitMetadata)
    {
        PreviousHosts = previousHosts;
        OmitCanary = omitCanary;
        OmitMetadata = omitMetadata;
    }

    public bool PreviousHosts { get; }

    public bool OmitCanary { get; }

    /// <summary>omit_host_metadata's label set (an empty set rejects every host, as Envoy's), or null.</summary>
    public KeyValuePair<string, Value>[]? OmitMetadata { get; }

    public static RetryHostPredicates? Compile(Google.Protobuf.Collections.RepeatedField<Envoy.Config.Route.V3.RetryPolicy.Types.RetryHostPredicate> predicates, string path, ConfigErrors errors)
    {
        var previous = false;
        var canary = false;
        KeyValuePair<string, Value>[]? metadata = null;
        for (var i = 0; i < predicates.Count; i++)
        {
            var predicate = predicates[i];
            var typeUrl = predicate.TypedConfig?.TypeUrl ?? string.Empty;
            if (Is(predicate.Name, typeUrl, "previous_hosts", "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"))
            {
                previous = true;
            }
            else if (Is(predicate.Name, typeUrl, "omit_canary_hosts", "envoy.extensions.retry.host.omit_canary_hosts.v3.OmitCanaryHostsPredicate"))
            {
                canary = true;
            }
            else if (Is(predicate.Name, typeUrl, "omit_host_metadata", "envoy.extensions.retry.host.omit_host_metadata.v3.OmitHostMetadataConfig"))
            {
                var config = predicate.TypedConfig is { } any && any.TypeUrl.Length > 0
                    ? any.Unpack<Envoy.Extensions.Retry.Host.OmitHostMetadata.V3.OmitHostMetadataConfig>()
                    : new Envoy.Extensions.Retry.Host.OmitHostMetadata.V3.OmitHostMetadataConfig();
                metadata = config.MetadataMatch?.FilterMetadata.TryGetValue(EnvoyLb, out var labels) == true
                    ? labels.Fields.ToArray()
                    : [];
            }
            else
            {
                errors.Add(FieldPath.Index(path, i), $"retry host predicate '{predicate.Name}' is not supported yet (only envoy.retry_host_predicates.previous_hosts, omit_canary_hosts and omit_host_metadata)");
            }
        }

        return previous || canary || metadata is not null ? new RetryHostPredicates(previous, canary, metadata) : null;
    }

    /// <summary>True when a retry should not go to <paramref name="host"/>.</summary>
    public bool Rejects(Host host, List<Host> previousHosts)
    {
        if (PreviousHosts && previousHosts.Contains(host))
        {
            return true;
        }

        var lb = host.Metadata is { } metadata && metadata.FilterMetadata.TryGetValue(EnvoyLb, out var fields) ? fields : null;
        if (OmitCanary && lb is not null && lb.Fields.TryGetValue("canary", out var canary) && canary.KindCase == Value.KindOneofCase.BoolValue && canary.BoolValue)
        {
            return true;
        }

        return OmitMetadata is { } labels && LabelsMatch(labels, lb);
    }

    private static bool LabelsMatch(KeyValuePair<string, Value>[] labels, Struct? lb)
    {
        foreach (var (key, expected) in labels)
        {
            if (lb is null || !lb.Fields.TryGetValue(key, out var actual))
            {
                return false;
            }

            if (actual.KindCase == Value.KindOneofCase.ListValue)
            {
                if (!actual.ListValue.Values.Contains(expected))
                {
                    return false;
                }
            }
            else if (!actual.Equals(expected))
            {
                return false;
            }
        }

        return true;
    }

    private static bool Is(string name, string typeUrl, string shortName, string typeName) =>
        typeUrl.Length > 0 ? typeUrl.EndsWith("/" + typeName, StringComparison.Ordinal) : name == "envoy.retry_host_predicates." + shortName;
}
