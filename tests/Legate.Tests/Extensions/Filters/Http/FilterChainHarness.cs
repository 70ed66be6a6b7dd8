using System.Buffers;
using System.Diagnostics;
using System.Text;
using Legate.Config;
using Legate.Http;
using Legate.Http.Http1;
using Legate.Server;
using Legate.Server.Logging;
using Legate.Stats;
using Legate.Tests.Harness;
using Legate.Upstream;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Legate.Tests.Extensions.Filters.Http;

/// <summary>
/// The real filter manager (<see cref="HttpStream"/>) over the HCM of a bootstrap's first listener,
/// without sockets: for what the wire does not show (response flags, details) and for a clock the
/// test moves. Routes should be direct responses (there are no clusters behind it).
/// </summary>
internal sealed class FilterChainHarness : IDisposable
{
    private readonly LogManager _logs;

    public FilterChainHarness(string yaml, TimeProvider? time = null)
    {
        var loaded = BootstrapLoader.Load(null, yaml);
        Warnings = loaded.Warnings;
        var hcm = loaded.Bootstrap.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig.Unpack<Hcm>();
        var errors = new ConfigErrors();
        _logs = LogManager.Create(CommandLineParser.Parse([]), new CapturingLogSink());
        var context = new HttpFilterFactoryContext
        {
            ClusterManager = ClusterManager.Compile(loaded.Bootstrap, errors),
            Stats = Stats,
            Logs = _logs,
            Time = time ?? TimeProvider.System,
            StatPrefix = hcm.StatPrefix,
        };
        Config = HttpConnectionManagerConfig.Compile(hcm, "hcm", errors, context, HttpConnectionManagerConfig.DefaultBufferLimitBytes)
            ?? throw new ConfigException(errors.Errors);
    }

    public StatsStore Stats { get; } = new();

    public IReadOnlyList<ConfigError> Warnings { get; }

    public HttpConnectionManagerConfig Config { get; }

    public long Counter(string name) => Stats.Counter(name).Value;

    public long Gauge(string name) => Stats.Gauge(name, ImportMode.Accumulate).Value;

    /// <summary>Begins a request; run its events on the returned exchange.</summary>
    public Exchange Begin(string path, params (string Name, string Value)[] headers)
    {
        var head = new HttpRequestHead();
        head.SetMethod("GET");
        head.SetPath(path);
        head.Headers.Add("host", "example.com");
        foreach (var (name, value) in headers)
        {
            head.Headers.Add(name, value);
        }

        var encoder = new CapturingEncoder();
        var stream = new HttpStream(Config, encoder);
        stream.Begin(head, Stopwatch.GetTimestamp());
        return new Exchange(stream, encoder);
    }

    public void Dispose() => _logs.Dispose();

    internal sealed class Exchange(HttpStream stream, CapturingEncoder encoder)
    {
        public HttpStream Stream { get; } = stream;

        public CapturingEncoder Response { get; } = encoder;

        public StreamInfo Info => Stream.Info;
    }

    /// <summary>Records what reaches the codec.</summary>
    internal sealed class CapturingEncoder : ResponseEncoder
    {
        private readonly MemoryStream _body = new();

        public int? Status { get; private set; }

        public Dictionary<string, string> Headers { get; } = new(StringComparer.OrdinalIgnoreCase);

        public bool Complete { get; private set; }

        public bool Reset { get; private set; }

        public string Body => Encoding.UTF8.GetString(_body.ToArray());

        public override ValueTask Encode1xxHeadersAsync(HttpResponseHead head) => ValueTask.CompletedTask;

        public override ValueTask EncodeHeadersAsync(HttpResponseHead head, bool endStream)
        {
            Status = head.StatusCode;
            for (var i = 0; i < head.Headers.Count; i++)
            {
                Headers[head.Headers.GetName(i)] = head.Headers.GetValue(i);
            }

            Complete = endStream;
            return ValueTask.CompletedTask;
        }

        public override ValueTask EncodeDataAsync(ReadOnlySequence<byte> data, bool endStream)
        {
            foreach (var segment in data)
            {
                _body.Write(segment.Span);
            }

            Complete = endStream;
            return ValueTask.CompletedTask;
        }

        public override ValueTask EncodeTrailersAsync(HttpHeaderMap trailers)
        {
            Complete = true;
            return ValueTask.CompletedTask;
        }

        public override ValueTask FlushAsync() => ValueTask.CompletedTask;

        public override void ResetStream() => Reset = true;
    }
}
