using System.Collections.Concurrent;
using System.Net;
using Envoy.Config.Bootstrap.V3;
using Envoy.Config.Core.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Network;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Tests.Harness;
using Legate.Xds;
using Microsoft.AspNetCore.Http;
using static Legate.Tests.Xds.XdsTestResources;
using ApiType = Envoy.Config.Core.V3.ApiConfigSource.Types.ApiType;

namespace Legate.Tests.Xds;

/// <summary>
/// xDS over REST (<c>api_type: REST</c>) against a small scripted HTTP/1.1 server written for the
/// test: CDS, EDS, LDS and RDS are polled every refresh_delay with JSON DiscoveryRequests POSTed to
/// <c>/v3/discovery:&lt;type&gt;</c>; updates apply, an invalid resource is NACKed in the next request
/// (error_detail, the previous version) while the old config keeps serving; the source's fields are
/// checked as Envoy checks them.
/// </summary>
public sealed class RestXdsTests
{
    [Fact]
    public async Task CdsEdsLdsAndRdsArePolledOverRestAppliedAndNackedInTheNextRequest()
    {
        await using var blue = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("blue")));
        await using var green = await ScriptedUpstream.StartAsync(new UpstreamScript(UpstreamResponse.Text("green")));
        await using var rest = await RestServer.StartAsync();
        rest.Set(ClusterType, "1", RestEds("blue"), RestEds("green"));
        rest.Set(EndpointType, "1", Endpoints("blue", blue.Port), Endpoints("green", green.Port));
        var listener = RdsListener("ingress", "main");
        SetRest(listener);
        rest.Set(ListenerType, "1", listener);
        rest.Set(RouteType, "1", Routes("main", "blue"));

        await using var legate = await InProcessLegate.StartAsync(Bootstrap(rest.Port));
        var first = await XdsWait.GetAsync(legate, "ingress");
        Assert.True(first == "blue", first + "\n" + legate.Logs.Text);

        // Every type went to its path as a JSON DiscoveryRequest with the node; named types list their names.
        Assert.Contains(rest.Requests, r => r.Path == "/v3/discovery:clusters" && r.Request.Node.Id == "test-node" && r.Request.TypeUrl == ClusterType);
        Assert.Contains(rest.Requests, r => r.Path == "/v3/discovery:listeners" && r.Request.TypeUrl == ListenerType);
        Assert.Contains(rest.Requests, r => r.Path == "/v3/discovery:routes" && r.Request.ResourceNames.SequenceEqual(["main"]));
        Assert.Contains(rest.Requests, r => r.Path == "/v3/discovery:endpoints" && r.Request.ResourceNames.Contains("blue"));
        // Polling: the accepted version comes back in the following requests (the ACK).
        await XdsWait.UntilAsync(() => rest.Requests.Any(r => r.Path == "/v3/discovery:clusters" && r.Request.VersionInfo == "1" && r.Request.ErrorDetail is null), "a CDS request acknowledging version 1");

        // An RDS change is picked up by the next poll and moves the traffic.
        rest.Set(RouteType, "2", Routes("main", "green"));
        await XdsWait.UntilAsync(async () => await XdsWait.GetAsync(legate, "ingress") == "green", "the route to move to green");
        Assert.Equal(2, XdsWait.Counter(legate, "http.ingress.rds.main.config_reload"));

        // An invalid cluster: the response is rejected, the next request NACKs it with the old version, and traffic keeps flowing.
        var bad = RestEds("broken");
        bad.ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(-1));
        rest.Set(ClusterType, "2", RestEds("blue"), RestEds("green"), bad);
        var nack = await rest.WaitForAsync(r => r.Path == "/v3/discovery:clusters" && r.Request.ErrorDetail is not null);
        Assert.Equal("1", nack.Request.VersionInfo);
        Assert.Contains("broken", nack.Request.ErrorDetail.Message);
        Assert.Null(legate.Server.Clusters.Find("broken"));
        Assert.Equal("green", await XdsWait.GetAsync(legate, "ingress"));
        Assert.True(XdsWait.Counter(legate, "cluster_manager.cds.update_rejected") >= 1);

        // The server goes away: fetches fail and are counted, the config in force stays.
        rest.Failing = true;
        var failures = XdsWait.Counter(legate, "cluster_manager.cds.update_failure");
        await XdsWait.UntilAsync(() => XdsWait.Counter(legate, "cluster_manager.cds.update_failure") > failures, "a failed CDS fetch");
        Assert.Equal("green", await XdsWait.GetAsync(legate, "ingress"));
    }

    [Fact]
    public void ARestSourceIsCheckedAsEnvoyChecksIt()
    {
        var bootstrap = new Bootstrap { StaticResources = new Bootstrap.Types.StaticResources() };
        bootstrap.StaticResources.Clusters.Add(new Envoy.Config.Cluster.V3.Cluster { Name = "rest_cluster" });

        var errors = new ConfigErrors();
        var missingDelay = new ApiConfigSource { ApiType = ApiType.Rest, TransportApiVersion = ApiVersion.V3 };
        missingDelay.ClusterNames.Add("rest_cluster");
        Assert.Null(XdsSourceSpec.Resolve(new ConfigSource { ApiConfigSource = missingDelay }, "dynamic_resources.cds_config", bootstrap, errors));
        Assert.Contains(errors.Errors, e => e.Path == "dynamic_resources.cds_config.api_config_source.refresh_delay" && e.Message == "refresh_delay is required for REST API configuration sources");

        errors = new ConfigErrors();
        var unknownCluster = new ApiConfigSource { ApiType = ApiType.Rest, RefreshDelay = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) };
        unknownCluster.ClusterNames.Add("nowhere");
        unknownCluster.GrpcServices.Add(new GrpcService { EnvoyGrpc = new GrpcService.Types.EnvoyGrpc { ClusterName = "rest_cluster" } });
        Assert.Null(XdsSourceSpec.Resolve(new ConfigSource { ApiConfigSource = unknownCluster }, "lds_config", bootstrap, errors));
        Assert.Contains(errors.Errors, e => e.Path == "lds_config.api_config_source.cluster_names[0]" && e.Message.Contains("'nowhere' must be a static cluster", StringComparison.Ordinal));
        Assert.Contains(errors.Errors, e => e.Path == "lds_config.api_config_source.grpc_services");

        errors = new ConfigErrors();
        var good = new ApiConfigSource { ApiType = ApiType.Rest, RefreshDelay = Duration.FromTimeSpan(TimeSpan.FromSeconds(2)) };
        good.ClusterNames.Add("rest_cluster");
        var spec = XdsSourceSpec.Resolve(new ConfigSource { ApiConfigSource = good }, "cds_config", bootstrap, errors);
        Assert.False(errors.HasErrors);
        Assert.Equal(XdsSourceKind.Rest, spec!.Kind);
        Assert.Equal(TimeSpan.FromSeconds(2), spec.RefreshDelay);
        Assert.Equal(TimeSpan.FromSeconds(1), spec.RequestTimeout);
    }

    private static ConfigSource RestSource()
    {
        var api = new ApiConfigSource
        {
            ApiType = ApiType.Rest,
            TransportApiVersion = ApiVersion.V3,
            RefreshDelay = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(200)),
            RequestTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(5)),
        };
        api.ClusterNames.Add("rest_cluster");
        return new ConfigSource { ApiConfigSource = api, ResourceApiVersion = ApiVersion.V3 };
    }

    private static Envoy.Config.Cluster.V3.Cluster RestEds(string name)
    {
        var cluster = EdsCluster(name);
        cluster.EdsClusterConfig.EdsConfig = RestSource();
        return cluster;
    }

    private static void SetRest(Envoy.Config.Listener.V3.Listener listener)
    {
        var filter = listener.FilterChains[0].Filters[0];
        var hcm = filter.TypedConfig.Unpack<Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager>();
        hcm.Rds.ConfigSource = RestSource();
        filter.TypedConfig = Any.Pack(hcm);
    }

    private static string Bootstrap(int port) => $$"""
        node: { id: test-node, cluster: test-cluster }
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        dynamic_resources:
          cds_config:
            resource_api_version: V3
            api_config_source: { api_type: REST, transport_api_version: V3, cluster_names: [rest_cluster], refresh_delay: 0.2s, request_timeout: 5s }
          lds_config:
            resource_api_version: V3
            api_config_source: { api_type: REST, transport_api_version: V3, cluster_names: [rest_cluster], refresh_delay: 0.2s, request_timeout: 5s }
        static_resources:
          clusters:
          - name: rest_cluster
            type: STATIC
            connect_timeout: 1s
            load_assignment:
              cluster_name: rest_cluster
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{port}} } } }
        """;

    /// <summary>The test's REST management server: answers each POST with the type's current resources as a JSON DiscoveryResponse, and records every request.</summary>
    private sealed class RestServer : IAsyncDisposable
    {
        private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));
        private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithTypeRegistry(TypeRegistry.FromMessages(
            Envoy.Config.Cluster.V3.Cluster.Descriptor, Envoy.Config.Listener.V3.Listener.Descriptor,
            Envoy.Config.Route.V3.RouteConfiguration.Descriptor, Envoy.Config.Endpoint.V3.ClusterLoadAssignment.Descriptor,
            Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager.Descriptor, Envoy.Extensions.Filters.Http.Router.V3.Router.Descriptor)));

        private readonly ConcurrentDictionary<string, (string Version, IMessage[] Resources)> _state = new();
        private readonly LogManager _logs = LogManager.Create(CommandLineParser.Parse([]), new CapturingLogSink());
        private KestrelListener _kestrel = null!;
        private int _nonce;

        public ConcurrentQueue<(string Path, DiscoveryRequest Request)> Requests { get; } = new();

        public int Port => _kestrel.BoundEndpoint.Port;

        /// <summary>Answer 503 to everything.</summary>
        public volatile bool Failing;

        public static async Task<RestServer> StartAsync()
        {
            var server = new RestServer();
            server._kestrel = new KestrelListener(new IPEndPoint(IPAddress.Loopback, 0), Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1, 1, server._logs.Get(LogComponents.Misc));
            await server._kestrel.StartAsync(server.HandleAsync, CancellationToken.None);
            return server;
        }

        public void Set(string typeUrl, string version, params IMessage[] resources) => _state[typeUrl] = (version, resources);

        public async Task<(string Path, DiscoveryRequest Request)> WaitForAsync(Func<(string Path, DiscoveryRequest Request), bool> predicate)
        {
            await XdsWait.UntilAsync(() => Requests.Any(predicate), "a matching REST request");
            return Requests.First(predicate);
        }

        public async ValueTask DisposeAsync()
        {
            await _kestrel.DisposeAsync();
            _logs.Dispose();
        }

        private async Task HandleAsync(HttpContext context)
        {
            using var reader = new StreamReader(context.Request.Body);
            var request = Parser.Parse<DiscoveryRequest>(await reader.ReadToEndAsync());
            Requests.Enqueue((context.Request.Path.Value ?? string.Empty, request));
            if (Failing || context.Request.Method != "POST" || context.Request.ContentType?.StartsWith("application/json", StringComparison.Ordinal) != true)
            {
                context.Response.StatusCode = Failing ? 503 : 400;
                return;
            }

            var response = new DiscoveryResponse { TypeUrl = request.TypeUrl, Nonce = Interlocked.Increment(ref _nonce).ToString(System.Globalization.CultureInfo.InvariantCulture) };
            if (_state.TryGetValue(request.TypeUrl, out var state))
            {
                response.VersionInfo = state.Version;
                foreach (var resource in state.Resources)
                {
                    // Named types get what they asked for; LDS/CDS everything.
                    var name = resource switch
                    {
                        Envoy.Config.Route.V3.RouteConfiguration r => r.Name,
                        Envoy.Config.Endpoint.V3.ClusterLoadAssignment e => e.ClusterName,
                        _ => null,
                    };
                    if (name is null || request.ResourceNames.Contains(name))
                    {
                        response.Resources.Add(Any.Pack(resource));
                    }
                }
            }

            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(Formatter.Format(response));
        }
    }
}
