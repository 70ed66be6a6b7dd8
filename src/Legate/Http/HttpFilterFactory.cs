namespace Legate.Http;

/// <summary>
/// A compiled HTTP filter configuration (one entry of the HCM's <c>http_filters</c>): creates
/// the filter instance of each stream. Lives next to the filter it builds.
/// </summary>
internal abstract class HttpFilterFactory
{
    protected HttpFilterFactory(string name) => Name = name;

    /// <summary>The configured <c>name</c> (the key of <c>typed_per_filter_config</c>).</summary>
    public string Name { get; }

    /// <summary>True for the router (or another terminal filter): it must be last.</summary>
    public virtual bool IsTerminal => false;

    public abstract HttpFilter CreateFilter();

    /// <summary>
    /// A filter for the next stream of a connection: <paramref name="recycled"/> is this factory's
    /// filter from the connection's previous stream when it agreed to be reused
    /// (<see cref="HttpFilter.TryRecycle"/>), else null.
    /// </summary>
    public virtual HttpFilter CreateFilter(HttpFilter? recycled) => CreateFilter();

    /// <summary>
    /// The listener version this config was compiled for is gone (LDS replaced or removed it, or its
    /// compile failed): give back what it registered server-wide, as Envoy's filter config does in its
    /// destructor. Nothing by default.
    /// </summary>
    public virtual void Release()
    {
    }
}
