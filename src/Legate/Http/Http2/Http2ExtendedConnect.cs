using System.Buffers;
using System.Security.Cryptography;
using Legate.Http.Http1;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Legate.Http.Http2;

/// <summary>
/// An extended CONNECT (RFC 8441: <c>:method CONNECT</c> with <c>:protocol</c>, e.g. WebSocket over
/// HTTP/2) on a downstream HTTP/2 stream, run as an HTTP/1.1-style upgrade as Envoy's codec does
/// (transformUpgradeRequestFromH2toH1): the stream continues as <c>GET</c> with
/// <c>upgrade: &lt;protocol&gt;</c> and <c>connection: upgrade</c>, so <c>upgrade_configs</c>, the route and
/// the router treat it like an HTTP/1.1 upgrade. On the way back a 101 (or any 2xx) becomes the 200
/// that accepts the extended CONNECT (transformUpgradeResponseFromH1toH2), and from then on the
/// stream's DATA frames are the tunnel's bytes both ways.
/// </summary>
/// <remarks>
/// Kestrel hands the tunnel out only through <see cref="IHttpExtendedConnectFeature.AcceptAsync"/>:
/// before the accept the request body reads empty, after it the returned stream carries both
/// directions and the response body writer no longer accepts writes. So the request side waits for
/// <see cref="Accepted"/> before relaying anything.
/// <para>
/// RFC 8441 drops RFC 6455's key/accept exchange, but an HTTP/1.1 WebSocket server refuses an
/// upgrade without <c>sec-websocket-key</c>. Envoy forwards none (envoyproxy/envoy#8547, fixed by its
/// pending change that generates one); Legate generates one when the client sent none and removes the
/// upstream's <c>sec-websocket-accept</c> from the 200, which answers no key the client sent.
/// </para>
/// </remarks>
internal sealed class Http2ExtendedConnect
{
    private static readonly byte[] s_upgrade = "upgrade"u8.ToArray();

    private readonly IHttpExtendedConnectFeature _feature;
    private readonly TaskCompletionSource<Stream?> _accepted = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private Http2ExtendedConnect(IHttpExtendedConnectFeature feature, bool generatedKey)
    {
        _feature = feature;
        GeneratedKey = generatedKey;
    }

    /// <summary>True when Legate made up the request's <c>sec-websocket-key</c> (the client sent none).</summary>
    public bool GeneratedKey { get; }

    /// <summary>The tunnel once the response accepted the CONNECT; null when it answered otherwise or the stream ended.</summary>
    public Task<Stream?> Accepted => _accepted.Task;

    /// <summary>
    /// When <paramref name="context"/> is an extended CONNECT, rewrites <paramref name="head"/> (already
    /// converted as a CONNECT) into its HTTP/1.1 upgrade form and returns the stream's tunnel state.
    /// </summary>
    public static Http2ExtendedConnect? FromRequest(HttpContext context, HttpRequestHead head)
    {
        // Only a CONNECT can carry :protocol (Kestrel resets any other stream that does): no feature lookup per request.
        if (head.MethodKind != HttpMethodKind.Connect
            || context.Features.Get<IHttpExtendedConnectFeature>() is not { IsExtendedConnect: true } feature || feature.Protocol is not { Length: > 0 } protocol)
        {
            return null;
        }

        var request = context.Features.Get<IHttpRequestFeature>()!;
        head.SetMethod("GET");
        head.TargetForm = RequestTargetForm.Origin;
        head.SetPath(request.RawTarget);
        head.Headers.Set(KnownHeader.Upgrade, protocol);
        head.Headers.Set(KnownHeader.Connection, s_upgrade);
        head.IsUpgrade = true;
        if (head.Headers.TryGetValue(KnownHeader.ContentLength, out ReadOnlySpan<byte> length) && length.SequenceEqual("0"u8))
        {
            head.Headers.Remove(KnownHeader.ContentLength);
        }

        var generated = false;
        if (string.Equals(protocol, "websocket", StringComparison.OrdinalIgnoreCase) && !head.Headers.Contains("sec-websocket-key"))
        {
            Span<byte> nonce = stackalloc byte[16];
            RandomNumberGenerator.Fill(nonce);
            head.Headers.Add("sec-websocket-key", Convert.ToBase64String(nonce));
            generated = true;
        }

        return new Http2ExtendedConnect(feature, generated);
    }

    /// <summary>
    /// The upstream accepted (101, or a 2xx from a CONNECT-speaking upstream): sends the 200 (or the
    /// 2xx) with the headers already set on <paramref name="response"/> and opens the tunnel.
    /// </summary>
    public async ValueTask<Stream?> AcceptAsync(HttpResponse response)
    {
        try
        {
            if (response.StatusCode == 101)
            {
                response.StatusCode = 200;
            }

            var tunnel = await _feature.AcceptAsync().ConfigureAwait(false);
            _accepted.TrySetResult(tunnel);
            return tunnel;
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or ConnectionAbortedException or ObjectDisposedException or OperationCanceledException)
        {
            _accepted.TrySetResult(null);
            return null;
        }
    }

    /// <summary>The stream answered without opening the tunnel (or ended): the request side stops waiting.</summary>
    public void Refuse() => _accepted.TrySetResult(null);

    /// <summary>
    /// The request half of the tunnel: once accepted, the client's DATA frames go through the filters as
    /// body and its END_STREAM ends the request (the router half-closes the upstream). Nothing is read
    /// when the tunnel never opened.
    /// </summary>
    public async ValueTask RelayRequestAsync(HttpStream stream, Http2ResponseEncoder encoder)
    {
        var tunnel = await Accepted.ConfigureAwait(false);
        if (tunnel is null)
        {
            return;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            while (!stream.IsReset)
            {
                var read = await tunnel.ReadAsync(buffer, stream.ResetToken).ConfigureAwait(false);
                if (read == 0)
                {
                    await stream.DecodeDataAsync(ReadOnlySequence<byte>.Empty, endStream: true).ConfigureAwait(false);
                    return;
                }

                await stream.DecodeDataAsync(new ReadOnlySequence<byte>(buffer, 0, read), endStream: false).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException or ConnectionAbortedException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            stream.Config.Log.Debug($"h2 extended CONNECT tunnel read ended early: {ex.Message}");
            encoder.OnRequestAborted();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
