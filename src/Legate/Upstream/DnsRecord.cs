using System.Net;

namespace Legate.Upstream;

/// <summary>One address of a DNS answer with its TTL (zero when the resolver does not know it, as getaddrinfo).</summary>
internal readonly record struct DnsRecord(IPAddress Address, TimeSpan Ttl);
