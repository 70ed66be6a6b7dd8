namespace Legate.Server;

/// <summary>Where the server is in its life, as Envoy's <c>ServerInfo.State</c> and <c>/ready</c> report it.</summary>
internal enum ServerState
{
    /// <summary>Created, nothing started.</summary>
    PreInitializing,

    /// <summary>Admin up, listeners being started.</summary>
    Initializing,

    /// <summary>Serving traffic.</summary>
    Live,

    /// <summary>Shutting down: listeners stop accepting, in-flight requests finish.</summary>
    Draining,
}
