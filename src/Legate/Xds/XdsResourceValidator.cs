using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Legate.Config;
using Legate.Config.Extensions;
using Legate.Config.Semantic;
using Legate.Config.Validation;
using Envoy.Config.Endpoint.V3;
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

    /// <summary>
    /// Runs every check; returns the errors (empty when the resource is valid) and adds warnings
    /// to <paramref name="warnings"/>. <paramref name="accepted"/> is the version of the resource
    /// in force, if any: the parts of <paramref name="message"/> equal to it are not checked again
    /// (see <see cref="UnchangedParts"/>).
    /// </summary>
    public IReadOnlyList<ConfigError> Validate(XdsResourceType type, IMessage message, List<string>? warnings = null, IMessage? accepted = null)
    {
        var errors = new ConfigErrors();
        var skip = UnchangedParts(message, accepted);
        PgvValidator.Validate(message, "", errors, skip);
        ExtensionChecker.Check(message, "", errors, skip);
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

        DataSourceChecker.Check(message, errors, skip: skip);
        if (message is Secret secret && errors.Errors.Count == 0)
        {
            CheckSecret(secret, errors);
        }
        if (errors.Errors.Count == 0 && warnings is not null)
        {
            ImplementedFields.Warn(message, "", errors, skip);
            foreach (var warning in errors.Warnings)
            {
                warnings.Add(warning.ToString());
            }
        }

        return errors.Errors;
    }

    /// <summary>
    /// What the checks may skip in a changed resource: for a ClusterLoadAssignment, each
    /// lb_endpoint equal to the one at the same place of the accepted assignment. Each check of
    /// an lb_endpoint depends on its content only, so it passed when that one was accepted (its
    /// warnings were logged then). A 10,000-endpoint assignment with one endpoint changed is
    /// then checked for that endpoint and the envelope, not walked four times whole. Null when
    /// nothing can be skipped.
    /// </summary>
    internal static Func<IMessage, bool>? UnchangedParts(IMessage message, IMessage? accepted)
    {
        if (message is not ClusterLoadAssignment next || accepted is not ClusterLoadAssignment previous)
        {
            return null;
        }

        HashSet<IMessage>? unchanged = null;
        for (var l = 0; l < next.Endpoints.Count && l < previous.Endpoints.Count; l++)
        {
            var now = next.Endpoints[l].LbEndpoints;
            var before = previous.Endpoints[l].LbEndpoints;
            for (var e = 0; e < now.Count && e < before.Count; e++)
            {
                if (now[e].Equals(before[e]))
                {
                    (unchanged ??= new HashSet<IMessage>(now.Count, ReferenceEqualityComparer.Instance)).Add(now[e]);
                }
            }
        }

        return unchanged is null ? null : m => m is LbEndpoint && unchanged.Contains(m);
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
            errors.AddFrom(ex);
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
