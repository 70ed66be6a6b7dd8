using Legate.Tests.Harness;

namespace Legate.Tests.Compat;

/// <summary>
/// A test over Envoy's sandbox corpus (../shared). Without the corpus it is reported as skipped,
/// never as passed.
/// </summary>
public sealed class CorpusFactAttribute : FactAttribute
{
    public CorpusFactAttribute()
    {
        if (!Repository.HasEnvoyExamples)
        {
            Skip = $"Envoy sandbox corpus not present at {Repository.EnvoyExamples}";
        }
    }
}
