namespace Legate.Upstream.ConnectionPool;

/// <summary>
/// A circuit breaker refused the request before it reached the upstream (Envoy's pool failure
/// "overflow": 503 with flag UO and <c>x-envoy-overloaded: true</c>). The pool already counted it.
/// </summary>
internal sealed class UpstreamOverflowException(string what) : Exception(what + " overflow")
{
}
