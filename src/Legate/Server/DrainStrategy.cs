namespace Legate.Server;

/// <summary>Envoy's <c>--drain-strategy</c>: how quickly connections are encouraged to close while draining.</summary>
internal enum DrainStrategy
{
    Gradual,
    Immediate,
}
