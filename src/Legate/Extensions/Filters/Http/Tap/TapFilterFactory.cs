using Google.Protobuf;
using Legate.Config;
using Legate.Http;
using Legate.Server.Logging;
using CommonExtensionConfig = Envoy.Extensions.Common.Tap.V3.CommonExtensionConfig;
using TapConfig = Envoy.Extensions.Filters.Http.Tap.V3.Tap;

namespace Legate.Extensions.Filters.Http.Tap;

/// <summary>
/// The compiled <c>envoy.filters.http.tap</c> config. A <c>static_config</c> taps from the start;
/// an <c>admin_config</c> registers the factory under its config id and taps only while a
/// <c>POST /tap</c> session is attached (<see cref="Active"/> set by <see cref="TapAdminRegistry"/>).
/// </summary>
internal sealed class TapFilterFactory : HttpFilterFactory
{
    private volatile TapSettings? _active;
    private TapAdminRegistry? _registry;
    private string _configId = string.Empty;

    private TapFilterFactory(string name, Logger log)
        : base(name) => Log = log;

    public Logger Log { get; }

    /// <summary><c>record_headers_received_time</c>: traces carry <c>headers_received_time</c> of request and response.</summary>
    public bool RecordHeadersReceivedTime { get; private init; }

    /// <summary><c>record_downstream_connection</c>: traces carry the client connection's addresses.</summary>
    public bool RecordDownstreamConnection { get; private init; }

    /// <summary>The server's runtime, for <c>tap_enabled</c>'s runtime key; null in unit tests.</summary>
    public Legate.Runtime.RuntimeLoader? Runtime { get; private init; }

    /// <summary>Wall-clock time for <c>headers_received_time</c>.</summary>
    public TimeProvider Time { get; private init; } = TimeProvider.System;

    /// <summary>The tap in effect; null: no tap, and the filter passes everything through untouched.</summary>
    public TapSettings? Active
    {
        get => _active;
        set => _active = value;
    }

    public static HttpFilterFactory? Create(string name, IMessage config, string path, ConfigErrors errors, HttpFilterFactoryContext context)
    {
        var tap = (TapConfig)config;
        var log = context.Logs.Get(LogComponents.Http);
        var commonPath = FieldPath.Field(path, "common_config");
        switch (tap.CommonConfig?.ConfigTypeCase ?? CommonExtensionConfig.ConfigTypeOneofCase.None)
        {
            case CommonExtensionConfig.ConfigTypeOneofCase.StaticConfig:
                return TapSettings.Compile(tap.CommonConfig!.StaticConfig, FieldPath.Field(commonPath, "static_config"), errors, adminSink: null, log) is { } settings
                    ? new TapFilterFactory(name, log) { Active = settings, RecordHeadersReceivedTime = tap.RecordHeadersReceivedTime, RecordDownstreamConnection = tap.RecordDownstreamConnection, Time = context.Time, Runtime = context.Runtime }
                    : null;
            case CommonExtensionConfig.ConfigTypeOneofCase.AdminConfig:
            {
                var configId = tap.CommonConfig!.AdminConfig.ConfigId;
                if (configId.Length == 0)
                {
                    errors.Add(FieldPath.Field(FieldPath.Field(commonPath, "admin_config"), "config_id"), "is required (at least 1 character)");
                    return null;
                }

                var factory = new TapFilterFactory(name, log)
                {
                    RecordHeadersReceivedTime = tap.RecordHeadersReceivedTime, RecordDownstreamConnection = tap.RecordDownstreamConnection, Time = context.Time, Runtime = context.Runtime,
                };
                if (context.Taps is { } taps)
                {
                    taps.Register(configId, factory);
                    factory._registry = taps;
                    factory._configId = configId;
                    // A listener whose compile fails later on never reaches LDS's release: unregister then.
                    Legate.Xds.SubscriptionHolds.Record(factory.Release);
                }
                else
                {
                    errors.Warn(FieldPath.Field(commonPath, "admin_config"), "no admin tap registry here: this filter never taps");
                }

                return factory;
            }

            default:
                errors.Add(commonPath, "one of admin_config or static_config is required");
                return null;
        }
    }

    /// <summary>Leaves the admin registry (an <c>admin_config</c> filter whose listener version is gone); once.</summary>
    public override void Release()
    {
        Interlocked.Exchange(ref _registry, null)?.Unregister(_configId, this);
    }

    public override HttpFilter CreateFilter() => new TapFilter(this);

    public override HttpFilter CreateFilter(HttpFilter? recycled) => recycled as TapFilter ?? new TapFilter(this);
}
