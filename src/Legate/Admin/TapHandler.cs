using System.Text;
using Legate.Config;
using Legate.Extensions.Filters.Http.Tap;
using Legate.Server;
using Microsoft.AspNetCore.Http;
using TapRequest = Envoy.Admin.V3.TapRequest;

namespace Legate.Admin;

/// <summary>
/// <c>POST /tap</c>: the body (YAML or JSON) is an <c>envoy.admin.v3.TapRequest</c>; its tap config
/// is installed on every tap filter whose <c>admin_config.config_id</c> matches, and the response
/// streams one JSON trace per tapped stream (chunked) until the admin client goes away, which
/// removes the tap. One session at a time, as in Envoy. Errors are 400 with Envoy's texts.
/// </summary>
internal sealed class TapHandler(IServerInstance server)
{
    public const string HelpText = "tap filter control";

    /// <summary>A request body larger than this is refused: a tap config is a few hundred bytes.</summary>
    private const int MaxBodyBytes = 1 << 20;

    public async ValueTask<AdminResponse> HandleAsync(HttpContext context)
    {
        var taps = server.Taps;
        if (taps is not null && taps.IsAttached)
        {
            return BadRequest("An attached /tap admin stream already exists. Detach it.");
        }

        var body = await ReadBodyAsync(context).ConfigureAwait(false);
        if (string.IsNullOrWhiteSpace(body))
        {
            return BadRequest("/tap requires a JSON/YAML body");
        }

        var errors = new ConfigErrors();
        TapRequest request;
        try
        {
            // YAML is a superset of JSON: one parser takes both, as Envoy's loadFromYaml does.
            request = new ProtoConverter(errors).Convert<TapRequest>(ConfigDocument.Parse(body, ConfigFormat.Yaml));
        }
        catch (ConfigException ex)
        {
            return BadRequest(ex.Message);
        }

        if (errors.HasErrors)
        {
            return BadRequest(Describe(errors));
        }

        if (request.ConfigId.Length == 0)
        {
            return BadRequest("TapRequest.config_id: value length must be at least 1 characters");
        }

        if (request.TapConfig is null)
        {
            return BadRequest("TapRequest.tap_config: value is required");
        }

        if (taps is null || !taps.IsRegistered(request.ConfigId))
        {
            return BadRequest($"Unknown config id '{request.ConfigId}'. No extension has registered with this id.");
        }

        StreamingAdminSink? adminSink = null;
        var settings = TapSettings.Compile(
            request.TapConfig, "tap_config", errors, format => adminSink = new StreamingAdminSink(format), server.Logs.Get(Server.Logging.LogComponents.Admin));
        if (settings is null)
        {
            return BadRequest(Describe(errors));
        }

        if (!taps.TryAttach(request.ConfigId, settings))
        {
            return BadRequest("An attached /tap admin stream already exists. Detach it.");
        }

        try
        {
            await StreamAsync(context, adminSink, taps.Stopping).ConfigureAwait(false);
        }
        finally
        {
            taps.Detach(settings);
            adminSink?.Complete();
        }

        // The response has started: AdminServer leaves it as it is.
        return AdminResponse.Text(string.Empty);
    }

    /// <summary>
    /// Sends the headers at once (the client then knows the tap is attached), then each trace as it
    /// comes, until the client disconnects. A file_per_tap session has nothing to stream: the
    /// response stays open as the session's handle.
    /// </summary>
    private static async Task StreamAsync(HttpContext context, StreamingAdminSink? sink, CancellationToken serverStopping)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = AdminResponse.TextContentType;
        response.Headers.CacheControl = "no-cache, max-age=0";
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers.Server = "envoy";
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, serverStopping);
        var aborted = ended.Token;
        try
        {
            await response.StartAsync(aborted).ConfigureAwait(false);
            await response.Body.FlushAsync(aborted).ConfigureAwait(false);
            if (sink is null)
            {
                await Task.Delay(Timeout.Infinite, aborted).ConfigureAwait(false);
                return;
            }

            if (sink.MaxTraces > 0)
            {
                await WriteBufferedAsync(response, sink, aborted).ConfigureAwait(false);
                return;
            }

            await foreach (var trace in sink.Traces.ReadAllAsync(aborted).ConfigureAwait(false))
            {
                await response.Body.WriteAsync(trace, aborted).ConfigureAwait(false);
                await response.Body.FlushAsync(aborted).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            // The admin client went away, or the server is stopping: the session ends.
        }
    }

    /// <summary>
    /// <c>buffered_admin</c>, as Envoy's trace buffer: traces are collected until <c>max_traces</c>
    /// (later ones ignored) or until the timeout, then written in order and the response ends.
    /// </summary>
    private static async Task WriteBufferedAsync(HttpResponse response, StreamingAdminSink sink, CancellationToken aborted)
    {
        var buffered = new List<byte[]>();
        using var timer = sink.FlushTimeout is { } timeout ? new CancellationTokenSource(timeout) : null;
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(aborted, timer?.Token ?? CancellationToken.None);
        try
        {
            while ((ulong)buffered.Count < sink.MaxTraces && await sink.Traces.WaitToReadAsync(wait.Token).ConfigureAwait(false))
            {
                while ((ulong)buffered.Count < sink.MaxTraces && sink.Traces.TryRead(out var trace))
                {
                    buffered.Add(trace);
                }
            }
        }
        catch (OperationCanceledException) when (!aborted.IsCancellationRequested)
        {
            // The timeout: flush what there is (possibly nothing).
        }

        foreach (var trace in buffered)
        {
            await response.Body.WriteAsync(trace, aborted).ConfigureAwait(false);
        }

        await response.Body.FlushAsync(aborted).ConfigureAwait(false);
    }

    private static async Task<string> ReadBodyAsync(HttpContext context)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted).ConfigureAwait(false)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > MaxBodyBytes)
            {
                break;
            }
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    private static string Describe(ConfigErrors errors)
    {
        var sb = new StringBuilder();
        foreach (var error in errors.Errors)
        {
            if (sb.Length > 0)
            {
                sb.Append('\n');
            }

            sb.Append(error.Path.Length > 0 ? error.Path + ": " + error.Message : error.Message);
        }

        return sb.ToString();
    }

    private static AdminResponse BadRequest(string message) => AdminResponse.Text(message, StatusCodes.Status400BadRequest);
}
