namespace Legate.Upstream;

/// <summary>How long to wait before the next attempt after a failure (Envoy's BackOffStrategy).</summary>
internal interface IBackOffStrategy
{
    TimeSpan NextBackOff();

    /// <summary>Called after a success: the next failure starts from the base interval again.</summary>
    void Reset();
}
