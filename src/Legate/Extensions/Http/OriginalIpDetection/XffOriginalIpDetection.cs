using System.Net;
using Legate.Http;
using Legate.Http.Http1;

namespace Legate.Extensions.Http.OriginalIpDetection;

/// <summary>
/// <c>envoy.http.original_ip_detection.xff</c>: the address <c>xff_num_trusted_hops</c> entries
/// from the right of x-forwarded-for. Trusted for internal checks only when XFF holds a single
/// address, as Envoy's getLastAddressFromXFF.
/// </summary>
internal sealed class XffOriginalIpDetection : OriginalIpDetection
{
    private readonly int _trustedHops;

    public XffOriginalIpDetection(int trustedHops) => _trustedHops = trustedHops;

    public override OriginalIpDetectionResult Detect(HttpHeaderMap headers, IPEndPoint? directRemote)
    {
        var address = ConnectionManagerUtility.LastXffAddress(headers, _trustedHops, out var single);
        return address is null ? OriginalIpDetectionResult.NotFound : new OriginalIpDetectionResult(address, single, null);
    }
}
