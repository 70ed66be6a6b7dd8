using Legate.Config;
using Rds = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.Rds;

namespace Legate.Xds;

/// <summary>Where a connection manager with <c>rds</c> gets its route table (the xDS manager).</summary>
internal interface IRdsSource
{
    /// <summary>The provider of <c>rds.route_config_name</c> from <c>rds.config_source</c>; null with errors added when the source cannot be used.</summary>
    RdsRouteConfigProvider? GetProvider(Rds rds, string statPrefix, string path, ConfigErrors errors);
}
