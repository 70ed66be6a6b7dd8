using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Legate.Server.Logging;

namespace Legate.Stats.Sinks;

/// <summary>
/// <c>envoy.stat_sinks.statsd</c> and <c>envoy.stat_sinks.dog_statsd</c>: at each flush, one
/// line per used counter (<c>prefix.name:delta|c</c>) and gauge (<c>prefix.name:value|g</c>), and
/// one per histogram sample recorded since the last flush (<c>prefix.name:value|ms</c>). Over
/// UDP each line is its own datagram, as in Envoy, unless the DogStatsD sink's
/// <c>max_bytes_per_datagram</c> is set: then lines are newline-joined into datagrams of at most that
/// many bytes (a line that long or longer goes alone). Over TCP (<c>tcp_cluster_name</c>) the lines
/// stream to a cluster host. The DogStatsD form uses the tag-extracted name and appends the tags
/// (<c>|#envoy.cluster_name:foo,…</c>).
/// </summary>
internal sealed class StatsdSink : IStatsSink
{
    /// <summary>Envoy's <c>Histogram::PercentScale</c>: percent histograms record fractions times this.</summary>
    private const double PercentScale = 1_000_000;

    private readonly string _prefix;
    private readonly bool _dogStatsd;
    private readonly int _maxDatagramBytes;
    private readonly IPEndPoint? _udpEndpoint;
    private readonly Func<IPEndPoint?>? _tcpEndpoint;
    private readonly Logger _log;
    private Socket? _udp;
    private TcpClient? _tcp;
    private bool _failing;

    private StatsdSink(string prefix, bool dogStatsd, int maxDatagramBytes, IPEndPoint? udpEndpoint, Func<IPEndPoint?>? tcpEndpoint, Logger log)
    {
        _prefix = prefix.Length > 0 ? prefix : "envoy";
        _dogStatsd = dogStatsd;
        _maxDatagramBytes = maxDatagramBytes;
        _udpEndpoint = udpEndpoint;
        _tcpEndpoint = tcpEndpoint;
        _log = log;
    }

    /// <param name="maxDatagramBytes">The DogStatsD <c>max_bytes_per_datagram</c>; 0 sends one line per datagram.</param>
    public static StatsdSink Udp(IPEndPoint endpoint, string prefix, bool dogStatsd, int maxDatagramBytes, Logger log) =>
        new(prefix, dogStatsd, Math.Max(0, maxDatagramBytes), endpoint, null, log);

    /// <param name="endpoint">Picks the cluster host to connect to, or null when it has none.</param>
    public static StatsdSink Tcp(Func<IPEndPoint?> endpoint, string prefix, Logger log) =>
        new(prefix, false, int.MaxValue, null, endpoint, log);

    public async ValueTask FlushAsync(StatsSnapshot snapshot, CancellationToken cancellationToken)
    {
        var lines = new List<string>();
        foreach (var (counter, delta) in snapshot.Counters)
        {
            lines.Add(Line(counter.Name, delta.ToString(CultureInfo.InvariantCulture), "c"));
        }

        foreach (var gauge in snapshot.Gauges)
        {
            lines.Add(Line(gauge.Name, gauge.Value.ToString(CultureInfo.InvariantCulture), "g"));
        }

        // Envoy's onHistogramComplete: statsd histograms are timers, so every sample is "|ms" with its
        // raw value, except percent histograms, scaled back to a fraction and sent as "|h".
        foreach (var (histogram, value) in snapshot.Samples)
        {
            lines.Add(histogram.Unit == HistogramUnit.Percent
                ? Line(histogram.Name, (value / PercentScale).ToString(CultureInfo.InvariantCulture), "h")
                : Line(histogram.Name, value.ToString(CultureInfo.InvariantCulture), "ms"));
        }

        try
        {
            if (_udpEndpoint is not null)
            {
                await SendUdpAsync(lines, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await SendTcpAsync(lines, cancellationToken).ConfigureAwait(false);
            }

            _failing = false;
        }
        catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException)
        {
            _tcp?.Dispose();
            _tcp = null;
            if (!_failing)
            {
                _failing = true;
                _log.Warn($"statsd sink: sending failed: {ex.Message}");
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        _udp?.Dispose();
        _tcp?.Dispose();
        return ValueTask.CompletedTask;
    }

    private string Line(StatName name, string value, string type)
    {
        var sb = new StringBuilder(_prefix).Append('.').Append(_dogStatsd ? name.TagExtracted : name.Full)
            .Append(':').Append(value).Append('|').Append(type);
        if (_dogStatsd && name.Tags.Count > 0)
        {
            sb.Append("|#");
            for (var i = 0; i < name.Tags.Count; i++)
            {
                sb.Append(i == 0 ? "" : ",").Append(name.Tags[i].Name).Append(':').Append(name.Tags[i].Value);
            }
        }

        return sb.ToString();
    }

    private async ValueTask SendUdpAsync(List<string> lines, CancellationToken cancellationToken)
    {
        var socket = _udp ??= new Socket(_udpEndpoint!.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        var datagram = new StringBuilder();
        foreach (var line in lines)
        {
            if (line.Length >= _maxDatagramBytes)
            {
                // Envoy's writeBuffer: a line that cannot share a datagram is sent on its own.
                await SendAsync(socket, line, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (datagram.Length > 0 && datagram.Length + 1 + line.Length > _maxDatagramBytes)
            {
                await SendAsync(socket, datagram.ToString(), cancellationToken).ConfigureAwait(false);
                datagram.Clear();
            }

            datagram.Append(datagram.Length > 0 ? "\n" : "").Append(line);
        }

        if (datagram.Length > 0)
        {
            await SendAsync(socket, datagram.ToString(), cancellationToken).ConfigureAwait(false);
        }
    }

    private ValueTask<int> SendAsync(Socket socket, string text, CancellationToken cancellationToken) =>
        socket.SendToAsync(Encoding.UTF8.GetBytes(text), SocketFlags.None, _udpEndpoint!, cancellationToken);

    private async ValueTask SendTcpAsync(List<string> lines, CancellationToken cancellationToken)
    {
        if (_tcp is not { Connected: true })
        {
            _tcp?.Dispose();
            _tcp = null;
            if (_tcpEndpoint!() is not { } endpoint)
            {
                throw new IOException("the statsd cluster has no host");
            }

            var client = new TcpClient(endpoint.AddressFamily);
            await client.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            _tcp = client;
        }

        var text = new StringBuilder();
        foreach (var line in lines)
        {
            text.Append(line).Append('\n');
        }

        await _tcp.GetStream().WriteAsync(Encoding.UTF8.GetBytes(text.ToString()), cancellationToken).ConfigureAwait(false);
    }
}
