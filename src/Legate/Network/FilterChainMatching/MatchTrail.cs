using System.Text;

namespace Legate.Network.FilterChainMatching;

/// <summary>
/// The specific values chosen on the way down the match tree while compiling, so an overlap error
/// can say which connections two chains both claim. Compile time only.
/// </summary>
internal sealed class MatchTrail
{
    private readonly MatchTrail? _parent;
    private readonly string _step;

    private MatchTrail(MatchTrail? parent, string step)
    {
        _parent = parent;
        _step = step;
    }

    public static MatchTrail Step(MatchTrail? parent, string field, string value) => new(parent, field + " " + value);

    /// <summary>"destination_port 443, server_names \"a.example.com\"", root first.</summary>
    public override string ToString()
    {
        var steps = new Stack<string>();
        for (var t = this; t is not null; t = t._parent)
        {
            steps.Push(t._step);
        }

        return new StringBuilder().AppendJoin(", ", steps).ToString();
    }
}
