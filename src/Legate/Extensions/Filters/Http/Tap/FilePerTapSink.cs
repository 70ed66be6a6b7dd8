using System.Globalization;
using Envoy.Data.Tap.V3;
using Legate.Server.Logging;
using Format = Envoy.Config.Tap.V3.OutputSink.Types.Format;

namespace Legate.Extensions.Filters.Http.Tap;

/// <summary>
/// <c>file_per_tap</c>: each tapped stream becomes the file <c>&lt;path_prefix&gt;_&lt;trace id&gt;.&lt;ext&gt;</c>,
/// as Envoy names them. Files are written on the thread pool, so a slow disk never holds up the
/// connection's loop; a failed write is logged, not thrown.
/// </summary>
internal sealed class FilePerTapSink : TapSink
{
    private readonly string _pathPrefix;
    private readonly Logger _log;

    public FilePerTapSink(string pathPrefix, Format format, Logger log)
        : base(format)
    {
        _pathPrefix = pathPrefix;
        _log = log;
    }

    public override void Submit(TraceWrapper trace, ulong traceId)
    {
        var path = string.Create(CultureInfo.InvariantCulture, $"{_pathPrefix}_{traceId}.{FileExtension(Format)}");
        ThreadPool.UnsafeQueueUserWorkItem(
            static state =>
            {
                var (sink, trace, path) = state;
                try
                {
                    File.WriteAllBytes(path, sink.Encode(trace));
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    sink._log.Error($"tap: cannot write {path}: {ex.Message}");
                }
            },
            (this, trace, path),
            preferLocal: false);
    }
}
