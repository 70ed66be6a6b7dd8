using System.Net;
using Legate.Server.Logging;

namespace Legate.Upstream;

/// <summary>
/// One DNS name of a STRICT_DNS or LOGICAL_DNS cluster, resolved now and again every
/// dns_refresh_rate after a success, or after the failure back-off (dns_failure_refresh_rate, else
/// dns_refresh_rate) after a failure. A failure does not call back: the cluster keeps its last
/// good hosts. The timer is armed only once an attempt has finished, so attempts never overlap.
/// </summary>
internal sealed class ResolveTarget : IDisposable
{
    // System.Threading.Timer takes at most 0xFFFFFFFE ms; a longer refresh rate waits that long.
    private static readonly TimeSpan s_maxDue = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    private readonly DnsSettings _settings;
    private readonly bool _logical;
    private readonly IDnsResolver _resolver;
    private readonly IBackOffStrategy _failureBackOff;
    private readonly Action<IPAddress[]> _onResolved;
    private readonly Logger? _log;
    private readonly ITimer _timer;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _firstAttempt = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _started;
    private long _attempts;
    private long _failures;

    /// <param name="dnsName">The name to resolve (socket_address.address).</param>
    /// <param name="onResolved">Called with the answer after dns_lookup_family, possibly empty; never concurrently for one target.</param>
    /// <param name="logical">LOGICAL_DNS: with respect_dns_ttl, the first address's TTL sets the next refresh (STRICT_DNS: the lowest).</param>
    public ResolveTarget(string dnsName, DnsSettings settings, ClusterFactoryContext context, Action<IPAddress[]> onResolved, bool logical = false)
    {
        DnsName = dnsName;
        _settings = settings;
        _logical = logical;
        _resolver = settings.Resolver ?? context.DnsResolver;
        _failureBackOff = settings.CreateFailureBackOff(context.NextRandom);
        _onResolved = onResolved;
        _log = context.Logger;
        _timer = context.TimeProvider.CreateTimer(
            static state => _ = ((ResolveTarget)state!).ResolveAsync(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public string DnsName { get; }

    /// <summary>Completes when the first attempt has finished, successfully or not.</summary>
    public Task FirstAttempt => _firstAttempt.Task;

    /// <summary>Envoy's update_attempt.</summary>
    public long Attempts => Interlocked.Read(ref _attempts);

    /// <summary>Envoy's update_failure.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Starts the first resolution; later ones follow by themselves.</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) == 0)
        {
            _ = ResolveAsync();
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _timer.Dispose();
        _firstAttempt.TrySetResult();
    }

    /// <summary>The TTL that sets the next refresh: the first chosen address's (LOGICAL_DNS), else the lowest of the chosen ones.</summary>
    private TimeSpan TtlOf(IReadOnlyList<DnsRecord> records, IPAddress[] chosen)
    {
        var ttl = TimeSpan.MaxValue;
        foreach (var address in chosen)
        {
            foreach (var record in records)
            {
                if (record.Address.Equals(address))
                {
                    if (_logical)
                    {
                        return record.Ttl;
                    }

                    ttl = record.Ttl < ttl ? record.Ttl : ttl;
                    break;
                }
            }
        }

        return ttl == TimeSpan.MaxValue ? TimeSpan.Zero : ttl;
    }

    private async Task ResolveAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        Interlocked.Increment(ref _attempts);
        IPAddress[]? addresses = null;
        var ttl = TimeSpan.Zero;
        try
        {
            var family = DnsLookupFamilies.QueryFamily(_settings.LookupFamily);
            if (_settings.RespectDnsTtl)
            {
                var records = await _resolver.ResolveRecordsAsync(DnsName, family, _stop.Token).ConfigureAwait(false);
                addresses = DnsLookupFamilies.Select(_settings.LookupFamily, records.Select(r => r.Address).ToArray());
                ttl = TtlOf(records, addresses);
            }
            else
            {
                var answer = await _resolver.ResolveAsync(DnsName, family, _stop.Token).ConfigureAwait(false);
                addresses = DnsLookupFamilies.Select(_settings.LookupFamily, answer);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e)
        {
            Interlocked.Increment(ref _failures);
            _log?.Debug($"DNS resolution for {DnsName} failed: {e.Message}");
        }

        if (_stop.IsCancellationRequested)
        {
            return;
        }

        TimeSpan next;
        if (addresses is null)
        {
            next = _failureBackOff.NextBackOff();
        }
        else
        {
            _failureBackOff.Reset();
            // respect_dns_ttl: an answer with addresses and a TTL above 0 sets the next refresh (Envoy).
            next = addresses.Length > 0 && ttl > TimeSpan.Zero ? ttl : _settings.RefreshRate;
            try
            {
                _onResolved(addresses);
            }
            catch (Exception e)
            {
                // A bug in applying the answer must not stop the refreshes.
                _log?.Error($"applying the DNS answer for {DnsName} failed: {e}");
            }
        }

        _firstAttempt.TrySetResult();
        try
        {
            _timer.Change(next < s_maxDue ? next : s_maxDue, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Disposed while this attempt was finishing.
        }
    }
}
