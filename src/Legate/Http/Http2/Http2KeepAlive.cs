using Envoy.Config.Core.V3;

namespace Legate.Http.Http2;

/// <summary>
/// <c>http2_protocol_options.connection_keepalive</c> as .NET's HTTP/2 stacks take it (Kestrel
/// downstream, SocketsHttpHandler upstream and on gRPC channels): a PING once the connection has
/// received nothing for <c>interval</c>, and the connection closed when the PING is not answered
/// within <c>timeout</c>. Without an interval (unset or zero) no PINGs are sent, as in Envoy. Both
/// stacks take whole seconds of at least one: shorter values are raised to one second;
/// <c>interval_jitter</c> and <c>connection_idle_interval</c> have no .NET equivalent (they warn).
/// </summary>
internal static class Http2KeepAlive
{
    private static readonly TimeSpan Minimum = TimeSpan.FromSeconds(1);

    /// <summary>The PING delay and its timeout, or null when no keepalive PINGs are asked for.</summary>
    public static (TimeSpan Delay, TimeSpan Timeout)? From(KeepaliveSettings? settings)
    {
        if (settings?.Interval?.ToTimeSpan() is not { } interval || interval <= TimeSpan.Zero)
        {
            return null;
        }

        var timeout = settings.Timeout?.ToTimeSpan() ?? TimeSpan.Zero;
        return (Max(interval), Max(timeout));
    }

    private static TimeSpan Max(TimeSpan value) => value < Minimum ? Minimum : value;
}
