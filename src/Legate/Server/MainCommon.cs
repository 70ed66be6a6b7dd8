using System.Runtime.InteropServices;
using Legate.Config;
using Legate.Network;
using Legate.Server.Logging;

namespace Legate.Server;

/// <summary>
/// What the <c>legate</c> executable does (Envoy's <c>MainCommon</c>): parse the command line,
/// load the config, then validate, initialize or serve. Returns the process exit code: 0 on
/// success and after a graceful shutdown, 1 for command-line, config and start-up errors.
/// </summary>
internal static class MainCommon
{
    public const int ExitOk = 0;
    public const int ExitError = 1;

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        if (args.Length > 0 && args[0] == "explain")
        {
            return await Explain.ExplainCommand.RunAsync(args[1..], stdout, stderr).ConfigureAwait(false);
        }

        if (args.Length > 0 && args[0] == "lint")
        {
            return await Lint.LintCommand.RunAsync(args[1..], stdout, stderr).ConfigureAwait(false);
        }

        if (args.Length > 0 && args[0] == "xds-server")
        {
            return await Xds.Server.XdsServerCommand.RunAsync(args[1..], stdout, stderr, cancellationToken).ConfigureAwait(false);
        }

        CommandLineOptions options;
        try
        {
            options = CommandLineParser.Parse(args);
        }
        catch (CommandLineException ex)
        {
            await stderr.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            await stderr.WriteLineAsync("run 'legate --help' for the list of flags").ConfigureAwait(false);
            return ExitError;
        }

        if (options.Help)
        {
            await stdout.WriteAsync(CommandLineParser.HelpText()).ConfigureAwait(false);
            return ExitOk;
        }

        if (options.Version)
        {
            await stdout.WriteLineAsync($"legate version: {VersionInfo.Full}").ConfigureAwait(false);
            return ExitOk;
        }

        LogManager logs;
        try
        {
            logs = LogManager.Create(options, stderr);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await stderr.WriteLineAsync($"error: --log-path: cannot open \"{options.LogPath}\": {ex.Message}").ConfigureAwait(false);
            return ExitError;
        }

        using (logs)
        {
            return options.Mode == ServerMode.Validate
                ? await ValidateAsync(options, logs, stdout, stderr).ConfigureAwait(false)
                : await ServeAsync(options, logs, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// <c>--mode validate</c>: load and compile everything, bind nothing. Prints
    /// <c>configuration '&lt;path&gt;' OK</c>, or every error one per line.
    /// </summary>
    private static async Task<int> ValidateAsync(CommandLineOptions options, LogManager logs, TextWriter stdout, TextWriter stderr)
    {
        var source = options.ConfigPath ?? (options.ConfigYaml is null ? BootstrapLoader.DefaultConfigName : "--config-yaml");
        LegateServer server;
        LoadedBootstrap loaded;
        try
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            loaded = BootstrapLoader.Load(options.ConfigPath, options.ConfigYaml);
            source = loaded.Source;
            server = LegateServer.Create(options, loaded, logs);
            logs.Get(LogComponents.Config).Debug(
                $"configuration '{source}' loaded, checked and compiled in {System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms");
        }
        catch (ConfigException ex)
        {
            foreach (var error in ex.Errors)
            {
                await stderr.WriteLineAsync(error.ToString()).ConfigureAwait(false);
            }

            return ExitError;
        }
        catch (Exception ex) when (IsLoadFailure(ex))
        {
            await stderr.WriteLineAsync($"error loading configuration '{source}': {ex.Message}").ConfigureAwait(false);
            return ExitError;
        }

        await using (server.ConfigureAwait(false))
        {
            foreach (var warning in server.Warnings)
            {
                await stderr.WriteLineAsync($"warning: {warning}").ConfigureAwait(false);
            }

            // legate lint's findings, as warnings: the configuration is valid, but likely not what was meant.
            foreach (var finding in Lint.ConfigLinter.Lint(loaded.Bootstrap))
            {
                await stderr.WriteLineAsync($"warning: lint {finding}").ConfigureAwait(false);
            }

            await stdout.WriteLineAsync($"configuration '{source}' OK").ConfigureAwait(false);
            return ExitOk;
        }
    }

    /// <summary>
    /// <c>--mode serve</c> and <c>--mode init_only</c>. init_only stops after everything is
    /// compiled: like Envoy it initializes and exits without serving, and binds nothing.
    /// </summary>
    private static async Task<int> ServeAsync(CommandLineOptions options, LogManager logs, CancellationToken cancellationToken)
    {
        var log = logs.Get(LogComponents.Main);
        var source = options.ConfigPath ?? (options.ConfigYaml is null ? BootstrapLoader.DefaultConfigName : "--config-yaml");
        LegateServer server;
        try
        {
            var loaded = BootstrapLoader.Load(options.ConfigPath, options.ConfigYaml);
            source = loaded.Source;
            server = LegateServer.Create(options, loaded, logs);
        }
        catch (ConfigException ex)
        {
            log.Critical($"error initializing configuration '{source}': {ex.Errors.Count} error(s)");
            foreach (var error in ex.Errors)
            {
                log.Critical(error.ToString());
            }

            return ExitError;
        }
        catch (Exception ex) when (IsLoadFailure(ex))
        {
            log.Critical($"error initializing configuration '{source}': {ex.Message}");
            return ExitError;
        }

        await using (server.ConfigureAwait(false))
        {
            if (options.Mode == ServerMode.InitOnly)
            {
                foreach (var warning in server.Warnings)
                {
                    logs.Get(LogComponents.Config).Warn(warning.ToString());
                }

                log.Info($"init_only mode: configuration '{source}' initialized; exiting without serving");
                return ExitOk;
            }

            // Envoy's signals: SIGTERM and SIGINT both shut down gracefully; SIGINT even when the
            // process started with it ignored (InterruptSignal).
            _ = InterruptSignal.RestoreIfIgnored();
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => OnSignal(context, server, log, "SIGTERM"));
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => OnSignal(context, server, log, "SIGINT"));

            // Envoy reopens its access logs on SIGUSR1 (log rotation). .NET has no PosixSignal name for it: 10 is Linux's number.
            using var sigusr1 = OperatingSystem.IsLinux() ? PosixSignalRegistration.Create((PosixSignal)10, context =>
            {
                context.Cancel = true;
                log.Warn("caught SIGUSR1");
                server.ReopenLogs();
            }) : null;
            try
            {
                await server.RunAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (BindException ex)
            {
                log.Critical(ex.Message);
                return ExitError;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Anything else that stops the server from starting is still a start-up error
                // with exit code 1, not a runtime crash dump.
                log.Critical($"fatal error: {ex}");
                return ExitError;
            }

            return ExitOk;
        }
    }

    private static void OnSignal(PosixSignalContext context, LegateServer server, Logger log, string name)
    {
        // Handle it ourselves instead of letting the runtime terminate the process.
        context.Cancel = true;
        log.Warn($"caught {name}");
        server.RequestShutdown(name);
    }

    /// <summary>Failures of reading or parsing a config that are not (yet) reported as a <see cref="ConfigException"/>.</summary>
    private static bool IsLoadFailure(Exception ex) =>
        ex is IOException or UnauthorizedAccessException or FormatException or InvalidOperationException
            or Google.Protobuf.InvalidProtocolBufferException or YamlDotNet.Core.YamlException or System.Text.Json.JsonException;
}
