namespace Legate.Upstream;

/// <summary>Picks the next host from one fixed list of hosts; safe from any number of threads.</summary>
internal abstract class HostScheduler
{
    public abstract Host Pick();
}
