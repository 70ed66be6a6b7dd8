using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Config.Extensions;
using Legate.Config.Semantic;
using Legate.Config.Validation;
using ClusterConfig = Envoy.Config.Cluster.V3.Cluster;
using ListenerConfig = Envoy.Config.Listener.V3.Listener;
using RouteConfiguration = Envoy.Config.Route.V3.RouteConfiguration;
using Secret = Envoy.Extensions.TransportSockets.Tls.V3.Secret;

namespace Legate.Xds;

/// <summary>
/// Decodes and checks dynamic resources with the same checks as the static bootstrap: the
/// protoc-gen-validate rules, the extension checker, Envoy's semantic checks and data sources.
/// Field paths in errors are relative to the resource. Fields set but not honoured come back as
/// warnings (logged once per update by the caller).
/// </summary>
internal sealed class XdsResourceValidator
{
    private readonly Func<HashSet<string>> _clusterNames;

    /// <param name="clusterNames">The clusters known now (for listeners' inline route tables, validate_clusters).</param>
    public XdsResourceValidator(Func<HashSet<string>> clusterNames)
    {
        _clusterNames = clusterNames;
    }

    /// <summary>
    /// The resource in <paramref name="any"/>, or null with the reason in <paramref name="error"/>.
    /// Unknown fields of binary resources are kept by the parser and ignored, as Envoy does.
    /// </summary>
    public IMessage? Decode(XdsResourceType type, Any any, out string? error)
    {
        if (any.TypeUrl != type.TypeUrl)
        {
            error = $"resource of type {any.TypeUrl} in a {type.TypeUrl} response";
            return null;
        }

        IMessage message;
        try
        {
            message = type.Descriptor.Parser.ParseFrom(any.Value);
        }
        catch (InvalidProtocolBufferException ex)
        {
            error = $"cannot decode {type.Descriptor.FullName}: {ex.Message}";
            return null;
        }

        error = null;
        return message;
    }

    /// <summary>Runs every check; returns the errors (empty when the resource is valid) and adds warnings to <paramref name="warnings"/>.</summary>
    public IReadOnlyList<ConfigError> Validate(XdsResourceType type, IMessage message, List<string>? warnings = null)
    {
        var errors = new ConfigErrors();
        PgvValidator.Validate(message, "", errors);
        ExtensionChecker.Check(message, "", errors);
        switch (message)
        {
            case ClusterConfig cluster:
                BootstrapValidator.ValidateDynamicCluster(cluster, "", errors);
                break;
            case ListenerConfig listener:
                BootstrapValidator.ValidateDynamicListener(listener, "", _clusterNames(), errors);
                break;
            case RouteConfiguration routes:
                // validate_clusters defaults to false for RDS (Envoy): clusters may arrive later.
                BootstrapValidator.CheckRouteConfiguration(routes, "", routes.ValidateClusters == true ? _clusterNames() : null, errors);
                break;
        }

        DataSourceChecker.Check(message, errors);
        if (message is Secret secret && errors.Errors.Count == 0)
        {
            CheckSecret(secret, errors);
        }
        if (errors.Errors.Count == 0 && warnings is not null)
        {
            ImplementedFields.Warn(message, "", errors);
            foreach (var warning in errors.Warnings)
            {
                warnings.Add(warning.ToString());
            }
        }

        return errors.Errors;
    }

    /// <summary>
    /// A secret must load as what it is: a certificate whose PEM parses and whose key matches it, a
    /// validation context whose CAs, CRLs and matchers compile. Session ticket keys and generic
    /// secrets are accepted as they are (nothing uses them yet).
    /// </summary>
    private static void CheckSecret(Secret secret, ConfigErrors errors)
    {
        try
        {
            switch (secret.TypeCase)
            {
                case Secret.TypeOneofCase.TlsCertificate:
                    _ = Legate.Tls.TlsCertificate.LoadOrThrow(secret.TlsCertificate, "tls_certificate");
                    break;
                case Secret.TypeOneofCase.ValidationContext:
                    _ = Legate.Tls.CertificateValidator.CompileOrThrow(secret.ValidationContext, "validation_context");
                    break;
                case Secret.TypeOneofCase.None:
                    errors.Add(string.Empty, "the secret holds none of tls_certificate, validation_context, session_ticket_keys, generic_secret");
                    break;
            }
        }
        catch (ConfigException ex)
        {
            foreach (var error in ex.Errors)
            {
                errors.Add(error.Path, error.Message);
            }
        }
        catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or ArgumentException or FormatException)
        {
            errors.Add(secret.TypeCase == Secret.TypeOneofCase.TlsCertificate ? "tls_certificate" : "validation_context", "cannot load the secret: " + ex.Message);
        }
    }

    /// <summary>"field: reason; field: reason" for a NACK message.</summary>
    public static string Describe(IReadOnlyList<ConfigError> errors) =>
        string.Join("; ", errors.Select(e => e.Path.Length > 0 ? $"{e.Path}: {e.Message}" : e.Message));
}
