using Envoy.Config.Bootstrap.V3;

namespace Legate.Config;

/// <summary>
/// A bootstrap that passed every check, with where it came from, the warnings it raised and where
/// each field was written (so that compiling it into listeners and clusters can still point at lines).
/// </summary>
internal sealed record LoadedBootstrap(Bootstrap Bootstrap, string Source, IReadOnlyList<ConfigError> Warnings, SourceMap SourceMap);
