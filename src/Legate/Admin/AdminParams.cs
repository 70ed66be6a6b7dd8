namespace Legate.Admin;

/// <summary>
/// The query parameters Envoy's admin declares per endpoint, by path, so that <c>/help</c> prints
/// the same lines under each endpoint. Kept apart from the registrations so that every handler's
/// <c>Add</c> call stays as it is; the texts are Envoy's (including its typos), since scripts and
/// people compare the two outputs.
/// </summary>
internal static class AdminParams
{
    private static readonly string[] YesNo = ["y", "n"];

    private static readonly AdminParam UsedOnly = new("usedonly", "Only include stats that have been written by system since restart");

    private static readonly AdminParam Filter = new("filter", "Regular expression (Google re2) for filtering stats");

    private static readonly Dictionary<string, AdminParam[]> ByPath = new(StringComparer.Ordinal)
    {
        ["/allocprofiler"] = [new("enable", "enable/disable the allocation profiler", YesNo)],
        ["/config_dump"] =
        [
            new("resource", "The resource to dump"),
            new("mask", "The mask to apply. When both resource and mask are specified, the mask is applied to every element in the desired repeated field so that only a subset of fields are returned. The mask is parsed as a ProtobufWkt::FieldMask"),
            new("name_regex", "Dump only the currently loaded configurations whose names match the specified regex. Can be used with both resource and mask query parameters."),
            new("include_eds", "Dump currently loaded configuration including EDS. See the response definition for more information"),
        ],
        ["/cpuprofiler"] = [new("enable", "enables the CPU profiler", YesNo)],
        ["/drain_listeners"] =
        [
            new("graceful", "When draining listeners, enter a graceful drain period prior to closing listeners. This behaviour and duration is configurable via server options or CLI"),
            new("skip_exit", "When draining listeners, do not exit after the drain period. This must be used with graceful"),
            new("inboundonly", "Drains all inbound listeners. traffic_direction field in envoy_v3_api_msg_config.listener.v3.Listener is used to determine whether a listener is inbound or outbound."),
        ],
        ["/heapprofiler"] = [new("enable", "enable/disable the heap profiler", YesNo)],
        ["/init_dump"] = [new("mask", "The desired component to dump unready targets. The mask is parsed as a ProtobufWkt::FieldMask. For example, get the unready targets of all listeners with /init_dump?mask=listener`")],
        ["/listeners"] = [new("format", "File format to use", ["text", "json"])],
        ["/logging"] =
        [
            new("paths", "Change multiple logging levels by setting to <logger_name1>:<desired_level1>,<logger_name2>:<desired_level2>. If fine grain logging is enabled, use __FILE__ or a glob experision as the logger name. For example, source/common*:warning"),
            // The empty first choice is Envoy's: no level means "leave every logger as it is".
            new("level", "desired logging level, this will change all loggers's level", ["", "trace", "debug", "info", "warning", "error", "critical", "off"]),
        ],
        ["/stats"] =
        [
            UsedOnly,
            Filter,
            new("format", "Format to use", ["html", "active-html", "text", "json"]),
            new("type", "Stat types to include.", ["All", "Counters", "Histograms", "Gauges", "TextReadouts"]),
            new("histogram_buckets", "Histogram bucket display mode", ["cumulative", "disjoint", "detailed", "none"]),
        ],
        ["/stats/prometheus"] =
        [
            UsedOnly,
            new("text_readouts", "Render text_readouts as new gaugues with value 0 (increases Prometheus data size)"),
            Filter,
            new("histogram_buckets", "Histogram bucket display mode", ["cumulative", "summary"]),
        ],
    };

    /// <summary>The parameters of <paramref name="path"/> (none for most endpoints).</summary>
    public static IReadOnlyList<AdminParam> For(string path) => ByPath.TryGetValue(path, out var parameters) ? parameters : [];
}
