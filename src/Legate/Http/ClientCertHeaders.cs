using System.Text;
using Legate.Tls;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Legate.Http;

/// <summary>
/// The HCM's <c>forward_client_cert_details</c> and <c>set_current_client_cert_details</c>: what
/// happens to <c>x-forwarded-client-cert</c> (XFCC). Envoy's rules: unless the mode is
/// ALWAYS_FORWARD_ONLY, a request on a connection without a client certificate loses the header;
/// SANITIZE (the default) always removes it; FORWARD_ONLY / ALWAYS_FORWARD_ONLY pass it on;
/// APPEND_FORWARD appends this hop's element and SANITIZE_SET replaces the header with it. The
/// element is <c>By=&lt;first local URI SAN&gt;;Hash=&lt;peer SHA-256&gt;</c> followed by the chosen
/// details in Envoy's order: <c>Cert</c>, <c>Chain</c>, <c>Subject</c>, <c>URI</c>, <c>DNS</c>.
/// </summary>
internal static class ClientCertHeaders
{
    public const string HeaderName = "x-forwarded-client-cert";

    public static void Mutate(HttpStream stream, TlsSessionInfo? tls)
    {
        var proto = stream.Config.Proto;
        var mode = proto.ForwardClientCertDetails;
        var headers = stream.RequestHeaders.Headers;
        var mtls = tls is { PeerCertificatePresented: true };
        if (!mtls && mode != Hcm.Types.ForwardClientCertDetails.AlwaysForwardOnly)
        {
            RemoveAll(headers);
            return;
        }

        switch (mode)
        {
            case Hcm.Types.ForwardClientCertDetails.Sanitize:
                RemoveAll(headers);
                return;
            case Hcm.Types.ForwardClientCertDetails.ForwardOnly:
            case Hcm.Types.ForwardClientCertDetails.AlwaysForwardOnly:
                return;
        }

        var element = Build(tls!, proto.SetCurrentClientCertDetails);
        if (mode == Hcm.Types.ForwardClientCertDetails.AppendForward && headers.GetValue(HeaderName) is { Length: > 0 } existing)
        {
            RemoveAll(headers);
            headers.Add(HeaderName, existing + "," + element);
        }
        else
        {
            RemoveAll(headers);
            headers.Add(HeaderName, element);
        }
    }

    internal static string Build(TlsSessionInfo tls, Hcm.Types.SetCurrentClientCertDetails? details)
    {
        var parts = new List<string>();
        if (tls.LocalNames is { Uri.Length: > 0 } local)
        {
            parts.Add("By=" + local.Uri[0]);
        }

        parts.Add("Hash=" + tls.PeerCertificateSha256);
        if (details is not null)
        {
            if (details.Cert)
            {
                parts.Add("Cert=\"" + Uri.EscapeDataString(tls.PeerCertificatePem) + "\"");
            }

            if (details.Chain)
            {
                parts.Add("Chain=\"" + Uri.EscapeDataString(tls.PeerChainPem) + "\"");
            }

            var peer = tls.PeerNames!;
            if (details.Subject is true)
            {
                parts.Add("Subject=\"" + peer.Subject + "\"");
            }

            if (details.Uri)
            {
                // Envoy keeps the key even when the certificate has no URI SAN.
                parts.Add("URI=" + (peer.Uri.Length > 0 ? peer.Uri[0] : string.Empty));
            }

            if (details.Dns)
            {
                foreach (var dns in peer.Dns)
                {
                    parts.Add("DNS=" + dns);
                }
            }
        }

        return string.Join(';', parts);
    }

    private static void RemoveAll(Legate.Http.Http1.HttpHeaderMap headers)
    {
        int index;
        while ((index = headers.IndexOf(HeaderName)) >= 0)
        {
            headers.RemoveAt(index);
        }
    }
}
