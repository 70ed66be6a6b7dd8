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
}
