using Legate.Config;
using Legate.Http;
using HcmHttpFilter = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpFilter;

namespace Legate.Xds;

/// <summary>Where an HTTP filter with <c>config_discovery</c> gets its configuration (the xDS manager's ECDS).</summary>
internal interface IEcdsSource
{
    /// <summary>The filter of <paramref name="filter"/>'s name, configured by ECDS; null with errors added when its source cannot be used.</summary>
    HttpFilterFactory? CreateDiscoveredFilter(HcmHttpFilter filter, string path, ConfigErrors errors, HttpFilterFactoryContext context);
}
