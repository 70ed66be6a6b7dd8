namespace Legate.Http;

/// <summary>
/// Which upstream 1xx heads go downstream, as Envoy's <c>HeaderUtility::isSpecial1xx</c> with
/// <c>envoy.reloadable_features.proxy_102_103</c> on (its default): 102 Processing and 103 Early
/// Hints always, 100 Continue only with the connection manager's <c>proxy_100_continue</c> (without
/// it Legate answers <c>Expect: 100-continue</c> itself and drops <c>Expect</c>). Any other 1xx is
/// dropped, and only the first forwarded 1xx of a stream goes out, as Envoy.
/// </summary>
internal static class InformationalResponses
{
    public static bool ShouldForward(int status, bool proxy100Continue) => status switch
    {
        100 => proxy100Continue,
        102 or 103 => true,
        _ => false,
    };
}
