using System.Net;

namespace Legate.Upstream;

/// <summary>
/// What makes two hosts "the same" across updates. Envoy matches by address; the hostname is part
/// of the key here as well, because it feeds SNI and host rewriting, so a host whose name changed
/// is a new host.
/// </summary>
internal readonly record struct HostKey(string Hostname, IPEndPoint Address);
