using System.Text;
using Envoy.Config.Accesslog.V3;
using Envoy.Type.V3;
using Legate.Config;
using Legate.Http;
using Legate.Http.Formatter;
using Legate.Router.Matching;
using ProtoFilter = Envoy.Config.Accesslog.V3.AccessLogFilter;

namespace Legate.AccessLog;

/// <summary>
/// A compiled Envoy access log filter (<c>envoy.config.accesslog.v3.AccessLogFilter</c>): decides
/// whether a finished stream is logged. Also used by local_reply_config's mappers, as in Envoy.
/// </summary>
internal abstract class AccessLogFilter
{
    public abstract bool Evaluate(in FormatterContext context);

    /// <summary>Compiles <paramref name="filter"/>; null (with errors added) when it cannot be honoured.</summary>
    /// <param name="runtime">Where runtime keys are read (comparison values, runtime_filter); null: the defaults.</param>
    public static AccessLogFilter? Compile(ProtoFilter filter, string path, ConfigErrors errors, Runtime.RuntimeLoader? runtime = null)
    {
        switch (filter.FilterSpecifierCase)
        {
            case ProtoFilter.FilterSpecifierOneofCase.StatusCodeFilter:
                return Comparison.Create(filter.StatusCodeFilter.Comparison, FieldPath.Field(FieldPath.Field(path, "status_code_filter"), "comparison"), errors, runtime,
                    static (in FormatterContext c) => c.Info.ResponseCode);
            case ProtoFilter.FilterSpecifierOneofCase.DurationFilter:
                // Envoy compares the stream's duration in milliseconds.
                return Comparison.Create(filter.DurationFilter.Comparison, FieldPath.Field(FieldPath.Field(path, "duration_filter"), "comparison"), errors, runtime,
                    static (in FormatterContext c) => (long)c.Info.Duration.TotalMilliseconds);
            case ProtoFilter.FilterSpecifierOneofCase.NotHealthCheckFilter:
                return new Predicate(static (in FormatterContext c) => !c.Info.HealthCheck);
            case ProtoFilter.FilterSpecifierOneofCase.TraceableFilter:
                return new Predicate(static (in FormatterContext c) => c.Info.TraceReason != Tracing.TraceReason.NotTraceable);
            case ProtoFilter.FilterSpecifierOneofCase.RuntimeFilter:
                return RuntimeSampling.Create(filter.RuntimeFilter, runtime);
            case ProtoFilter.FilterSpecifierOneofCase.AndFilter:
            case ProtoFilter.FilterSpecifierOneofCase.OrFilter:
                var isAnd = filter.FilterSpecifierCase == ProtoFilter.FilterSpecifierOneofCase.AndFilter;
                var children = isAnd ? filter.AndFilter.Filters : filter.OrFilter.Filters;
                var listPath = FieldPath.Field(FieldPath.Field(path, isAnd ? "and_filter" : "or_filter"), "filters");
                var compiled = new AccessLogFilter[children.Count];
                var ok = true;
                for (var i = 0; i < children.Count; i++)
                {
                    var child = Compile(children[i], FieldPath.Index(listPath, i), errors, runtime);
                    ok &= child is not null;
                    compiled[i] = child!;
                }

                return !ok ? null : isAnd ? new All(compiled) : new AnyOf(compiled);
            case ProtoFilter.FilterSpecifierOneofCase.HeaderFilter:
                var matcher = CompiledHeaderMatcher.Create(filter.HeaderFilter.Header, errors, FieldPath.Field(FieldPath.Field(path, "header_filter"), "header"));
                return matcher is null ? null : new HeaderPredicate(matcher);
            case ProtoFilter.FilterSpecifierOneofCase.ResponseFlagFilter:
                var wanted = ResponseFlags.None;
                var flagsPath = FieldPath.Field(FieldPath.Field(path, "response_flag_filter"), "flags");
                for (var i = 0; i < filter.ResponseFlagFilter.Flags.Count; i++)
                {
                    var name = filter.ResponseFlagFilter.Flags[i];
                    if (ResponseFlagNames.TryParseShort(name, out var flag))
                    {
                        wanted |= flag;
                    }
                    else
                    {
                        errors.Add(FieldPath.Index(flagsPath, i), $"unknown response flag \"{name}\"");
                    }
                }

                // An empty list matches any flag, as in Envoy.
                return wanted == ResponseFlags.None
                    ? new Predicate(static (in FormatterContext c) => c.Info.ResponseFlags != ResponseFlags.None)
                    : new Predicate((in FormatterContext c) => (c.Info.ResponseFlags & wanted) != 0);
            case ProtoFilter.FilterSpecifierOneofCase.GrpcStatusFilter:
                var statuses = new HashSet<int>();
                foreach (var status in filter.GrpcStatusFilter.Statuses)
                {
                    statuses.Add((int)status);
                }

                var exclude = filter.GrpcStatusFilter.Exclude;
                return new Predicate((in FormatterContext c) =>
                {
                    // Envoy: a stream without a gRPC status counts as Unknown.
                    var found = statuses.Contains(GrpcStatus.Of(c) ?? 2);
                    return exclude ? !found : found;
                });
            default:
                errors.Add(path, $"access log filter '{filter.FilterSpecifierCase}' is not supported yet");
                return null;
        }
    }

    private delegate bool PredicateFunc(in FormatterContext context);

    private delegate long ValueFunc(in FormatterContext context);

    private sealed class Predicate(PredicateFunc predicate) : AccessLogFilter
    {
        public override bool Evaluate(in FormatterContext context) => predicate(context);
    }

    private sealed class All(AccessLogFilter[] filters) : AccessLogFilter
    {
        public override bool Evaluate(in FormatterContext context)
        {
            foreach (var filter in filters)
            {
                if (!filter.Evaluate(context))
                {
                    return false;
                }
            }

            return true;
        }
    }

    private sealed class AnyOf(AccessLogFilter[] filters) : AccessLogFilter
    {
        public override bool Evaluate(in FormatterContext context)
        {
            foreach (var filter in filters)
            {
                if (filter.Evaluate(context))
                {
                    return true;
                }
            }

            return false;
        }
    }

    private sealed class HeaderPredicate(CompiledHeaderMatcher matcher) : AccessLogFilter
    {
        public override bool Evaluate(in FormatterContext context)
        {
            if (context.Request is not { } request)
            {
                return false;
            }

            var authority = request.Authority.IsEmpty ? string.Empty : Encoding.Latin1.GetString(request.Authority);
            return matcher.Matches(new RouteMatchInput(request.Method, request.Path, authority, request.Headers.Lookup));
        }
    }

    /// <summary>status_code_filter and duration_filter: <c>value OP comparison.value</c> (the runtime key overrides the default value).</summary>
    private sealed class Comparison(ComparisonFilter.Types.Op op, long value, string runtimeKey, Runtime.RuntimeLoader? runtime, ValueFunc actual) : AccessLogFilter
    {
        public static Comparison Create(ComparisonFilter comparison, string path, ConfigErrors errors, Runtime.RuntimeLoader? runtime, ValueFunc actual)
        {
            _ = path;
            _ = errors;
            return new Comparison(comparison.Op, comparison.Value?.DefaultValue ?? 0, comparison.Value?.RuntimeKey ?? string.Empty, runtime, actual);
        }

        public override bool Evaluate(in FormatterContext context)
        {
            var a = actual(context);
            var expected = runtime is null || runtimeKey.Length == 0 ? value : (long)Math.Min(runtime.Snapshot.GetInteger(runtimeKey, (ulong)value), long.MaxValue);
            return op switch
            {
                ComparisonFilter.Types.Op.Ge => a >= expected,
                ComparisonFilter.Types.Op.Le => a <= expected,
                _ => a == expected,
            };
        }
    }

    /// <summary>
    /// runtime_filter: logs <c>percent_sampled</c> of the streams (default 0%), or the percentage
    /// the runtime key holds. Without <c>use_independent_randomness</c> the sample is
    /// decided by the x-request-id, so every log of one request agrees.
    /// </summary>
    private sealed class RuntimeSampling(uint numerator, uint denominator, bool independent, string runtimeKey, Runtime.RuntimeLoader? runtime) : AccessLogFilter
    {
        public static RuntimeSampling Create(RuntimeFilter config, Runtime.RuntimeLoader? runtime)
        {
            var percent = config.PercentSampled;
            var denominator = percent?.Denominator switch
            {
                FractionalPercent.Types.DenominatorType.TenThousand => 10_000u,
                FractionalPercent.Types.DenominatorType.Million => 1_000_000u,
                _ => 100u,
            };
            return new RuntimeSampling(percent?.Numerator ?? 0, denominator, config.UseIndependentRandomness, config.RuntimeKey, runtime);
        }

        public override bool Evaluate(in FormatterContext context)
        {
            ulong sample;
            if (!independent && context.Request is { } request && request.Headers.IndexOf("x-request-id".AsSpan()) is var index and >= 0
                && TryHexPrefix(request.Headers.GetValueBytes(index), out var fromId))
            {
                sample = fromId;
            }
            else
            {
                sample = (ulong)Random.Shared.NextInt64(long.MaxValue);
            }

            return runtime is null ? sample % denominator < numerator : runtime.Snapshot.FeatureEnabled(runtimeKey, numerator, denominator, sample);
        }

        /// <summary>Envoy's request id extension <c>toInteger</c>: the id's first 8 hex digits.</summary>
        private static bool TryHexPrefix(ReadOnlySpan<byte> id, out ulong value) => Tracing.TracingDecision.TryFirstHexDigits(id, out value);
    }
}
