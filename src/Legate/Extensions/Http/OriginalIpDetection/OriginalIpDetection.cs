using System.Net;
using Legate.Http.Http1;

namespace Legate.Extensions.Http.OriginalIpDetection;

/// <summary>
/// What an original IP detection extension found (Envoy's OriginalIPDetectionResult): the
/// client's address, whether internal/external checks may trust it, or a status to reject the
/// request with. All empty: this extension found nothing, ask the next.
/// </summary>
internal readonly record struct OriginalIpDetectionResult(IPAddress? Address, bool AllowTrustedAddressChecks, int? RejectStatus)
{
    public static readonly OriginalIpDetectionResult NotFound = default;
}

/// <summary>
/// One of the HTTP connection manager's <c>original_ip_detection_extensions</c> (Envoy's
/// Http::OriginalIPDetection): decides the request's client address from its headers when
/// <c>use_remote_address</c> is off. Envoy's default, when the list is empty, is one
/// <see cref="XffOriginalIpDetection"/> with the HCM's <c>xff_num_trusted_hops</c>.
/// </summary>
internal abstract class OriginalIpDetection
{
    public abstract OriginalIpDetectionResult Detect(HttpHeaderMap headers, IPEndPoint? directRemote);
}
