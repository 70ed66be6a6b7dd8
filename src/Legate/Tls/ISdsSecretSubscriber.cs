using Envoy.Extensions.TransportSockets.Tls.V3;

namespace Legate.Tls;

/// <summary>
/// One user of an SDS secret (a <see cref="SecretProvider{T}"/> of a certificate or a validation
/// context). An update is applied in two steps so that a state-of-the-world response is all or
/// nothing: every subscriber compiles first (a failure NACKs the response), then all apply.
/// </summary>
internal interface ISdsSecretSubscriber
{
    /// <summary>The secret's name.</summary>
    string Name { get; }

    /// <summary>Checks and compiles <paramref name="secret"/>; throws <see cref="Legate.Config.ConfigException"/> (paths relative to the secret) when it cannot be used.</summary>
    object Compile(Secret secret);

    /// <summary>Makes a value returned by <see cref="Compile"/> the one new handshakes use.</summary>
    void Apply(object compiled);

    /// <summary>The first value did not arrive within initial_fetch_timeout: stop warming on it.</summary>
    void EndWarming();
}
