using System.Text;
using Legate.Http.Formatter;

namespace Legate.AccessLog;

/// <summary>
/// One configured access logger (Envoy's <c>AccessLog::Instance</c>): an optional filter, a
/// format and the file it writes to. <see cref="Log"/> runs on the stream's thread at its end:
/// it formats into a per-thread buffer and hands the line to the file's buffer; the disk is
/// written by the manager's background writer.
/// </summary>
internal sealed class AccessLogInstance
{
    [ThreadStatic]
    private static StringBuilder? t_line;

    public AccessLogInstance(AccessLogFilter? filter, SubstitutionFormatter formatter, AccessLogFile file)
    {
        Filter = filter;
        Formatter = formatter;
        File = file;
    }

    public AccessLogFilter? Filter { get; }

    public SubstitutionFormatter Formatter { get; }

    public AccessLogFile File { get; }

    public void Log(in FormatterContext context)
    {
        if (Filter is { } filter && !filter.Evaluate(context))
        {
            return;
        }

        var line = t_line ??= new StringBuilder(256);
        line.Clear();
        Formatter.Format(context, line);
        File.Write(line);
        if (line.Capacity > 64 * 1024)
        {
            // One huge line must not pin its buffer to the thread for ever.
            t_line = null;
        }
    }

    /// <summary>Logs <paramref name="context"/> to every logger of <paramref name="logs"/>.</summary>
    public static void LogAll(AccessLogInstance[] logs, in FormatterContext context)
    {
        foreach (var log in logs)
        {
            log.Log(context);
        }
    }
}
