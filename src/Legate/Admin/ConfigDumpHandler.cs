using Envoy.Admin.V3;
using Google.Protobuf.WellKnownTypes;
using Legate.Server;
using Microsoft.AspNetCore.Http;

namespace Legate.Admin;

/// <summary>
/// <c>/config_dump</c>: the configuration in effect as an Envoy <c>ConfigDump</c>, secrets redacted.
/// Interim: only the <c>BootstrapConfigDump</c>; the listener, route and cluster dumps come with
/// those managers, and the resource/mask/name_regex/include_eds parameters are not handled yet.
/// </summary>
internal sealed class ConfigDumpHandler
{
    private readonly IServerInstance _server;
    private readonly Lazy<string> _json;

    public ConfigDumpHandler(IServerInstance server)
    {
        _server = server;

        // The static bootstrap never changes while the server runs: build the JSON once.
        _json = new Lazy<string>(() => ProtoJson.Format(Build()), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public ValueTask<AdminResponse> HandleAsync(HttpContext context) =>
        // Dynamic resources change while the server runs: those dumps are built per request.
        ValueTask.FromResult(AdminResponse.Json(_server.Xds is { IsActive: true } ? ProtoJson.Format(Build()) : _json.Value));

    public ConfigDump Build()
    {
        var bootstrap = _server.Bootstrap.Clone();
        SensitiveFieldRedactor.Redact(bootstrap);
        var dump = new ConfigDump();
        dump.Configs.Add(Any.Pack(new BootstrapConfigDump
        {
            Bootstrap = bootstrap,
            LastUpdated = Timestamp.FromDateTimeOffset(_server.ConfigLoadedAt),
        }));
        if (_server.Xds is { IsActive: true } xds)
        {
            Legate.Xds.XdsConfigDump.AddTo(dump, xds);
        }

        return dump;
    }
}
