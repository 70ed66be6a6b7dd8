using Legate.Http.Http1;

namespace Legate.Tracing;

/// <summary>
/// A tracing provider (Envoy's <c>Tracing::Driver</c>, configured by HCM <c>tracing.provider</c>):
/// starts the connection manager's span for a request, continuing the trace its headers carry.
/// Drivers are shared by every connection manager with the same provider config and live as long
/// as the server (<see cref="TracerManager"/>).
/// </summary>
internal abstract class Tracer
{
    /// <param name="config">The connection manager's tracing settings.</param>
    /// <param name="requestHeaders">The request, after the connection manager's header mutations.</param>
    /// <param name="operationName">The span's name (<c>ingress</c>, <c>egress host</c>).</param>
    /// <param name="startTime">When the request started.</param>
    /// <param name="traced">The sampling decision (a propagated decision in the headers may override it).</param>
    public abstract Span StartSpan(TracingConfig config, HttpHeaderMap requestHeaders, string operationName, DateTimeOffset startTime, bool traced);

    /// <summary>Sends whatever is buffered (called on shutdown).</summary>
    public virtual ValueTask FlushAsync() => ValueTask.CompletedTask;
}
