using Legate.Http;
using Legate.Upstream;

namespace Legate.Router.Redirect;

/// <summary>
/// One request's internal redirects: how many were followed, the routes they reached (for
/// <c>previous_routes</c>), and the route and cluster the next attempt goes to once the
/// redirected answer's attempt has finished.
/// </summary>
internal sealed class InternalRedirectState
{
    private List<string>? _visited;

    public uint Count { get; private set; }

    /// <summary>The redirect to apply before the next attempt, or null.</summary>
    public InternalRedirectTarget? Pending { get; set; }

    public bool Visited(string routeName) => _visited?.Contains(routeName) == true;

    public void Record(string routeName)
    {
        Count++;
        (_visited ??= new List<string>()).Add(routeName);
    }
}
