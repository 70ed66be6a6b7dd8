namespace Legate.Upstream;

/// <summary>A DNS query no name server answered (timeout, SERVFAIL, REFUSED…): the cluster keeps its hosts and retries.</summary>
internal sealed class DnsResolutionException(string message) : Exception(message);
