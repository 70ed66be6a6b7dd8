using System.Net;
using Legate.Server;
using Legate.Server.Logging;

namespace Legate.Xds.Server;

/// <summary>
/// <c>legate xds-server --dir DIR [--listen 127.0.0.1:18000] [--tls-cert FILE --tls-key FILE] [--rest-listen ADDRESS:PORT] [-l level]</c>:
/// runs the bundled management server until SIGINT/SIGTERM; with a PEM certificate and key it serves h2 over TLS.
/// </summary>
internal static class XdsServerCommand
{
    public const string Usage = "usage: legate xds-server --dir DIR [--listen ADDRESS:PORT] [--tls-cert PEM --tls-key PEM] [--rest-listen ADDRESS:PORT] [-l LEVEL]";

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        string? dir = null;
        var listen = "127.0.0.1:18000";
        var level = "info";
        string? certFile = null, keyFile = null, restListen = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--dir" when i + 1 < args.Length:
                    dir = args[++i];
                    break;
                case "--listen" when i + 1 < args.Length:
                    listen = args[++i];
                    break;
                case "--rest-listen" when i + 1 < args.Length:
                    restListen = args[++i];
                    break;
                case "--tls-cert" when i + 1 < args.Length:
                    certFile = args[++i];
                    break;
                case "--tls-key" when i + 1 < args.Length:
                    keyFile = args[++i];
                    break;
                case "-l" or "--log-level" when i + 1 < args.Length:
                    level = args[++i];
                    break;
                case "-h" or "--help":
                    await stdout.WriteLineAsync(Usage).ConfigureAwait(false);
                    return MainCommon.ExitOk;
                default:
                    await stderr.WriteLineAsync($"error: unexpected argument '{args[i]}'\n{Usage}").ConfigureAwait(false);
                    return MainCommon.ExitError;
            }
        }

        if (dir is null || !Directory.Exists(dir))
        {
            await stderr.WriteLineAsync(dir is null ? $"error: --dir is required\n{Usage}" : $"error: directory '{dir}' does not exist").ConfigureAwait(false);
            return MainCommon.ExitError;
        }

        if (!IPEndPoint.TryParse(listen, out var endpoint))
        {
            await stderr.WriteLineAsync($"error: --listen '{listen}' is not ADDRESS:PORT").ConfigureAwait(false);
            return MainCommon.ExitError;
        }

        IPEndPoint? restEndpoint = null;
        if (restListen is not null && !IPEndPoint.TryParse(restListen, out restEndpoint))
        {
            await stderr.WriteLineAsync($"error: --rest-listen '{restListen}' is not ADDRESS:PORT").ConfigureAwait(false);
            return MainCommon.ExitError;
        }

        System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null;
        if (certFile is not null || keyFile is not null)
        {
            if (certFile is null || keyFile is null)
            {
                await stderr.WriteLineAsync($"error: --tls-cert and --tls-key go together\n{Usage}").ConfigureAwait(false);
                return MainCommon.ExitError;
            }

            try
            {
                certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(certFile, keyFile);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
            {
                await stderr.WriteLineAsync($"error: cannot load the TLS certificate: {ex.Message}").ConfigureAwait(false);
                return MainCommon.ExitError;
            }
        }

        using var logs = LogManager.Create(CommandLineParser.Parse(["-l", level]), new TextWriterLogSink(stdout, ownsWriter: false));
        var log = logs.Get(LogComponents.Config);
        // Signals are taken before the server says it is serving: a supervisor may stop it at once.
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
        using var registration = cancellationToken.Register(() => stop.TrySetResult());
        await using var server = new XdsManagementServer(dir, endpoint, log, certificate, restEndpoint);
        try
        {
            await server.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Legate.Network.BindException ex)
        {
            await stderr.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return MainCommon.ExitError;
        }

        await stop.Task.ConfigureAwait(false);
        log.Info("xds-server: stopping");
        return MainCommon.ExitOk;
    }
}
