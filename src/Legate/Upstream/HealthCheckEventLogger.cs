using System.Text;
using Envoy.Config.Core.V3;
using Envoy.Data.Core.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Legate.Upstream;

/// <summary>
/// A health checker's event log (<c>event_log_path</c> and the <c>event_logger</c> file sinks, each
/// getting every event): one <c>envoy.data.core.v3.HealthCheckEvent</c> per line in Envoy's JSON form
/// (proto field names, primitive fields printed even when default; the host's metadata and locality):
/// <c>eject_unhealthy_event</c> when a host fails, <c>add_healthy_event</c> when it passes back
/// (<c>first_check</c> for its very first check), <c>health_check_failure_event</c> for a failed first
/// check or, with <c>always_log_health_check_failures</c>, every failure,
/// <c>successful_health_check_event</c> with <c>always_log_health_check_success</c>,
/// <c>degraded_healthy_host</c> / <c>no_longer_degraded_host</c> when <c>x-envoy-degraded</c> comes or
/// goes. Written on the health check sessions' threads (never on the request path), appended and
/// flushed per event.
/// </summary>
internal sealed class HealthCheckEventLogger : IDisposable
{
    private static readonly JsonFormatter s_json = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true).WithPreserveProtoFieldNames(true));

    private readonly Lock _lock = new();
    private readonly FileStream[] _files;
    private readonly TimeProvider _time;
    private readonly string _clusterName;
    private readonly HealthCheckerType _type;

    public HealthCheckEventLogger(IEnumerable<string> paths, string clusterName, HealthCheckSettings.Kind kind, TimeProvider time)
    {
        _files = [.. paths.Select(path => new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))];
        _clusterName = clusterName;
        _time = time;
        _type = kind switch
        {
            HealthCheckSettings.Kind.Tcp => HealthCheckerType.Tcp,
            HealthCheckSettings.Kind.Grpc => HealthCheckerType.Grpc,
            _ => HealthCheckerType.Http,
        };
    }

    public void LogEjectUnhealthy(Host host, HealthCheckFailureType failure) =>
        Write(host, e => e.EjectUnhealthyEvent = new HealthCheckEjectUnhealthy { FailureType = failure });

    public void LogAddHealthy(Host host, bool firstCheck) =>
        Write(host, e => e.AddHealthyEvent = new HealthCheckAddHealthy { FirstCheck = firstCheck });

    public void LogUnhealthy(Host host, HealthCheckFailureType failure, bool firstCheck) =>
        Write(host, e => e.HealthCheckFailureEvent = new HealthCheckFailure { FailureType = failure, FirstCheck = firstCheck });

    public void LogSuccessful(Host host) =>
        Write(host, e => e.SuccessfulHealthCheckEvent = new HealthCheckSuccessful());

    public void LogDegraded(Host host) =>
        Write(host, e => e.DegradedHealthyHost = new DegradedHealthyHost());

    public void LogNoLongerDegraded(Host host) =>
        Write(host, e => e.NoLongerDegradedHost = new NoLongerDegradedHost());

    private void Write(Host host, Action<HealthCheckEvent> setEvent)
    {
        var e = new HealthCheckEvent
        {
            HealthCheckerType = _type,
            Host = new Address
            {
                SocketAddress = new SocketAddress { Address = host.Address.Address.ToString(), PortValue = (uint)host.Address.Port },
            },
            ClusterName = _clusterName,
            Timestamp = Timestamp.FromDateTimeOffset(_time.GetUtcNow()),
            Metadata = host.Metadata,
            Locality = host.Locality ?? new Locality(),
        };
        setEvent(e);
        var line = Encoding.UTF8.GetBytes(s_json.Format(e) + "\n");
        lock (_lock)
        {
            try
            {
                foreach (var file in _files)
                {
                    file.Write(line);
                    file.Flush();
                }
            }
            catch (IOException)
            {
                // A full disk must not stop health checking; the event is lost, as Envoy's would be.
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var file in _files)
            {
                file.Dispose();
            }
        }
    }
}
