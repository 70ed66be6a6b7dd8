namespace Legate.Extensions.Filters.Network.TcpProxy;

/// <summary>Downstream bytes read before the upstream was connected, handed to the relay: <see cref="Buffer"/> (the pool's) holds <see cref="Count"/>; <see cref="Ended"/>: the client's FIN followed.</summary>
internal readonly record struct EarlyBytes(byte[]? Buffer, int Count, bool Ended);
