namespace Legate.Stats;

/// <summary>What the admin output needs of any stat.</summary>
internal interface IStat
{
    StatName Name { get; }

    /// <summary>Whether the stat was ever updated; <c>?usedonly</c> shows only these.</summary>
    bool Used { get; }
}
