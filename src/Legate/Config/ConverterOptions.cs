namespace Legate.Config;

/// <summary>How <see cref="ProtoConverter"/> treats input that is not part of the schema.</summary>
internal sealed class ConverterOptions
{
    /// <summary>
    /// Skip fields the schema does not know instead of rejecting them. Envoy does this for dynamic
    /// (xDS) resources, which may come from a control plane built against a newer API; the
    /// bootstrap stays strict.
    /// </summary>
    public bool IgnoreUnknownFields { get; init; }

    /// <summary>Called with the field path of each unknown field skipped under <see cref="IgnoreUnknownFields"/>.</summary>
    public Action<string>? OnUnknownField { get; init; }
}
