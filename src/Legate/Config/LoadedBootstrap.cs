using Envoy.Config.Bootstrap.V3;

namespace Legate.Config;

/// <summary>A bootstrap that passed every check, with where it came from and the warnings it raised.</summary>
internal sealed record LoadedBootstrap(Bootstrap Bootstrap, string Source, IReadOnlyList<ConfigError> Warnings);
