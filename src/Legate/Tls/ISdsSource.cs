using Envoy.Config.Core.V3;
using Legate.Config;

namespace Legate.Tls;

/// <summary>
/// Where secrets whose <c>sds_config</c> is an xDS source (<c>ads</c>, <c>api_config_source</c>)
/// come from: the xDS manager, which subscribes the secret's name on that source and hands every
/// accepted <c>Secret</c> to the subscriber.
/// </summary>
internal interface ISdsSource
{
    /// <summary>
    /// Subscribes <paramref name="subscriber"/> to its secret on <paramref name="source"/>; returns the
    /// action that takes it off again (the last subscriber of a name ends the subscription to it), or
    /// null with errors added when the source cannot be used.
    /// </summary>
    Action? Subscribe(ConfigSource source, string path, ISdsSecretSubscriber subscriber, ConfigErrors errors);
}
