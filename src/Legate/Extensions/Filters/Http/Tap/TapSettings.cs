using Google.Protobuf;
using Legate.Config;
using Legate.Server.Logging;
using OutputSink = Envoy.Config.Tap.V3.OutputSink;
using TapConfig = Envoy.Config.Tap.V3.TapConfig;
using Format = Envoy.Config.Tap.V3.OutputSink.Types.Format;
using MatchPredicate = Envoy.Config.Common.Matcher.V3.MatchPredicate;

namespace Legate.Extensions.Filters.Http.Tap;

/// <summary>
/// A compiled <c>config.tap.v3.TapConfig</c>: which streams to tap, how much of each body to keep,
/// and the sink the traces go to. Immutable; a tap filter factory holds the one in effect.
/// </summary>
internal sealed class TapSettings
{
    /// <summary>Envoy's default for max_buffered_rx_bytes and max_buffered_tx_bytes.</summary>
    public const int DefaultMaxBufferedBytes = 1024;

    private TapSettings(TapMatcher matcher, TapSink sink, int maxRx, int maxTx)
    {
        Matcher = matcher;
        Sink = sink;
        MaxBufferedRxBytes = maxRx;
        MaxBufferedTxBytes = maxTx;
    }

    public TapMatcher Matcher { get; }

    public TapSink Sink { get; }

    /// <summary>The most request body bytes a trace keeps; beyond it the body is marked truncated.</summary>
    public int MaxBufferedRxBytes { get; }

    /// <summary>The most response body bytes a trace keeps.</summary>
    public int MaxBufferedTxBytes { get; }

    /// <summary><c>tap_enabled</c>'s runtime key (empty: none).</summary>
    private string TapEnabledKey { get; init; } = string.Empty;

    /// <summary><c>tap_enabled.default_value</c>; unset, every stream may be tapped (100%).</summary>
    private (uint Numerator, uint Denominator)? TapEnabled { get; init; }

    /// <summary>Whether this stream may be tapped (<c>tap_enabled</c>, sampled once per stream, as Envoy).</summary>
    public bool Sample(Legate.Runtime.RuntimeLoader? runtime)
    {
        if (TapEnabled is not { } fraction)
        {
            return true;
        }

        var random = (ulong)Random.Shared.NextInt64(long.MaxValue);
        return runtime is not null
            ? runtime.Snapshot.FeatureEnabled(TapEnabledKey, fraction.Numerator, fraction.Denominator, random)
            : random % fraction.Denominator < fraction.Numerator;
    }

    /// <summary>
    /// Compiles <paramref name="config"/>. <paramref name="adminSink"/> is the sink of the admin
    /// stream that installs it (<c>POST /tap</c>); null for a static_config, where a
    /// streaming_admin or buffered_admin sink is an error as in Envoy. Null result: errors were added.
    /// </summary>
    public static TapSettings? Compile(TapConfig config, string path, ConfigErrors errors, Func<Format, StreamingAdminSink>? adminSink, Logger log)
    {
        var before = errors.Errors.Count;
        TapMatcher? matcher = null;
        if (config.Match is { } match)
        {
            // When both are set Envoy uses match.
            matcher = TapMatcher.Compile(match, FieldPath.Field(path, "match"), errors);
        }
#pragma warning disable CS0612 // match_config is deprecated, still accepted by Envoy
        else if (config.MatchConfig is { } legacy)
        {
            // The legacy config.tap.v3.MatchPredicate has the same fields and numbers as the common one.
            matcher = TapMatcher.Compile(MatchPredicate.Parser.ParseFrom(legacy.ToByteString()), FieldPath.Field(path, "match_config"), errors);
        }
#pragma warning restore CS0612
        else
        {
            errors.Add(path, "neither match nor match_config is set");
        }

        TapSink? sink = null;
        var outputPath = FieldPath.Field(path, "output_config");
        var maxRx = DefaultMaxBufferedBytes;
        var maxTx = DefaultMaxBufferedBytes;
        if (config.OutputConfig is not { } output)
        {
            errors.Add(outputPath, "is required");
        }
        else
        {
            maxRx = (int)Math.Min(output.MaxBufferedRxBytes ?? DefaultMaxBufferedBytes, int.MaxValue);
            maxTx = (int)Math.Min(output.MaxBufferedTxBytes ?? DefaultMaxBufferedBytes, int.MaxValue);
            if (output.Sinks.Count != 1)
            {
                errors.Add(FieldPath.Field(outputPath, "sinks"), "Only a single tap sink is supported");
            }
            else
            {
                sink = CompileSink(output.Sinks[0], FieldPath.Index(FieldPath.Field(outputPath, "sinks"), 0), errors, adminSink, log);
            }
        }

        if (errors.Errors.Count != before || matcher is null || sink is null)
        {
            return null;
        }

        return config.TapEnabled is { } enabled
            ? new TapSettings(matcher, sink, maxRx, maxTx)
            {
                TapEnabledKey = enabled.RuntimeKey,
                TapEnabled = (enabled.DefaultValue?.Numerator ?? 0, Legate.Runtime.RuntimeSnapshot.DenominatorValue(enabled.DefaultValue?.Denominator ?? default)),
            }
            : new TapSettings(matcher, sink, maxRx, maxTx);
    }

    private static TapSink? CompileSink(OutputSink sink, string path, ConfigErrors errors, Func<Format, StreamingAdminSink>? adminSink, Logger log)
    {
        if (!System.Enum.IsDefined(sink.Format))
        {
            errors.Add(FieldPath.Field(path, "format"), $"unknown format {(int)sink.Format}");
            return null;
        }

        switch (sink.OutputSinkTypeCase)
        {
            case OutputSink.OutputSinkTypeOneofCase.StreamingAdmin:
                if (adminSink is null)
                {
                    errors.Add(FieldPath.Field(path, "streaming_admin"), "Error: Specifying admin streaming output without configuring admin.");
                    return null;
                }

                if (sink.Format is not (Format.JsonBodyAsBytes or Format.JsonBodyAsString))
                {
                    errors.Add(FieldPath.Field(path, "format"), "streaming_admin output supports only JSON_BODY_AS_BYTES and JSON_BODY_AS_STRING");
                    return null;
                }

                return adminSink(sink.Format);
            case OutputSink.OutputSinkTypeOneofCase.FilePerTap:
                if (sink.FilePerTap.PathPrefix.Length == 0)
                {
                    errors.Add(FieldPath.Field(FieldPath.Field(path, "file_per_tap"), "path_prefix"), "is required (at least 1 character)");
                    return null;
                }

                return new FilePerTapSink(sink.FilePerTap.PathPrefix, sink.Format, log);
            case OutputSink.OutputSinkTypeOneofCase.StreamingGrpc:
                errors.Add(FieldPath.Field(path, "streaming_grpc"), "the streaming_grpc tap sink is not supported yet");
                return null;
            case OutputSink.OutputSinkTypeOneofCase.BufferedAdmin:
            {
                var bufferedPath = FieldPath.Field(path, "buffered_admin");
                if (adminSink is null)
                {
                    errors.Add(bufferedPath, "Output sink type BufferedAdmin requires that the admin output will be configured via admin");
                    return null;
                }

                if (sink.Format is not (Format.JsonBodyAsBytes or Format.JsonBodyAsString or Format.ProtoBinaryLengthDelimited))
                {
                    // Envoy asserts (and aborts); a 400 here.
                    errors.Add(FieldPath.Field(path, "format"), "buffered admin output only supports JSON or length delimited proto binary formats");
                    return null;
                }

                if (sink.BufferedAdmin.MaxTraces == 0)
                {
                    errors.Add(FieldPath.Field(bufferedPath, "max_traces"), "value must be greater than 0");
                    return null;
                }

                var timeout = sink.BufferedAdmin.Timeout?.ToTimeSpan() ?? TimeSpan.Zero;
                var buffered = adminSink(sink.Format);
                buffered.UseBuffering(sink.BufferedAdmin.MaxTraces, timeout > TimeSpan.Zero ? timeout : null);
                return buffered;
            }
            case OutputSink.OutputSinkTypeOneofCase.CustomSink:
                errors.Add(FieldPath.Field(path, "custom_sink"), "custom tap sinks are not supported yet");
                return null;
            default:
                errors.Add(path, "one of streaming_admin, file_per_tap, streaming_grpc, buffered_admin or custom_sink is required");
                return null;
        }
    }
}
