namespace Legate.Server;

/// <summary>Envoy's <c>--mode</c>: serve traffic, only check the config, or initialize and exit.</summary>
internal enum ServerMode
{
    Serve,
    Validate,
    InitOnly,
}
