using System.Net;
using Legate.Http.Http1;

namespace Legate.Extensions.Http.OriginalIpDetection;

/// <summary>
/// <c>envoy.http.original_ip_detection.custom_header</c>: the client address is the first value
/// of <c>header_name</c> (an IP literal). Not trusted for internal checks unless
/// <c>allow_extension_to_set_address_as_trusted</c>; when the header is missing or not an address,
/// <c>reject_with_status</c> (a 4xx or 5xx, else 403, as Envoy) rejects the request.
/// </summary>
internal sealed class CustomHeaderOriginalIpDetection : OriginalIpDetection
{
    private readonly string _headerName;
    private readonly bool _allowTrusted;
    private readonly int? _rejectStatus;

    public CustomHeaderOriginalIpDetection(string headerName, bool allowTrusted, int? rejectStatus)
    {
        _headerName = headerName.ToLowerInvariant();
        _allowTrusted = allowTrusted;
        _rejectStatus = rejectStatus is { } status ? (status is >= 400 and <= 511 ? status : 403) : null;
    }

    public override OriginalIpDetectionResult Detect(HttpHeaderMap headers, IPEndPoint? directRemote)
    {
        var i = headers.IndexOf(_headerName.AsSpan());
        if (i >= 0 && Legate.Http.ConnectionManagerUtility.ParseIpLiteral(headers.GetValueBytes(i)) is { } address)
        {
            return new OriginalIpDetectionResult(address, _allowTrusted, null);
        }

        return new OriginalIpDetectionResult(null, false, _rejectStatus);
    }
}
