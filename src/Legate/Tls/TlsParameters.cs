using System.Net.Security;
using System.Security.Authentication;
using Legate.Config;
using Proto = Envoy.Extensions.TransportSockets.Tls.V3.TlsParameters;

namespace Legate.Tls;

/// <summary>
/// A compiled <c>tls_params</c>: the protocol range and the TLS 1.2 cipher list. .NET on Linux
/// (OpenSSL underneath) applies both; <c>ecdh_curves</c> and <c>signature_algorithms</c> have no
/// .NET API: downstream, they put the chain on the OpenSSL engine (<see cref="OpenSsl.OpenSslServerEngine"/>),
/// which also reads the version range and cipher names from here.
/// </summary>
internal sealed class TlsParameters
{
    private TlsParameters(SslProtocols protocols, CipherSuitesPolicy? ciphers, int minVersion, int maxVersion, IReadOnlyList<string> cipherNames)
    {
        Protocols = protocols;
        Ciphers = ciphers;
        MinVersion = minVersion;
        MaxVersion = maxVersion;
        CipherNames = cipherNames;
    }

    /// <summary>The lowest version, as 10 (TLS 1.0) to 13 (TLS 1.3).</summary>
    public int MinVersion { get; }

    public int MaxVersion { get; }

    /// <summary>The configured TLS 1.2 cipher names in order (groups flattened, exclusions dropped), empty for the defaults.</summary>
    public IReadOnlyList<string> CipherNames { get; }

    public SslProtocols Protocols { get; }

    /// <summary>null = the platform's defaults.</summary>
    public CipherSuitesPolicy? Ciphers { get; }

    /// <summary>
    /// Compiles <paramref name="proto"/> (may be null). Envoy's defaults: TLS 1.2 up to TLS 1.3 on
    /// both sides.
    /// </summary>
    public static TlsParameters? Compile(Proto? proto, string path, ConfigErrors errors)
    {
        var min = proto?.TlsMinimumProtocolVersion ?? Proto.Types.TlsProtocol.TlsAuto;
        var max = proto?.TlsMaximumProtocolVersion ?? Proto.Types.TlsProtocol.TlsAuto;
        var minVersion = min == Proto.Types.TlsProtocol.TlsAuto ? 12 : Version(min);
        var maxVersion = max == Proto.Types.TlsProtocol.TlsAuto ? 13 : Version(max);
        if (minVersion > maxVersion)
        {
            errors.Add(FieldPath.Field(path, "tls_minimum_protocol_version"), $"tls_minimum_protocol_version {min} is above tls_maximum_protocol_version {max}");
            return null;
        }

        var protocols = SslProtocols.None;
        for (var v = minVersion; v <= maxVersion; v++)
        {
#pragma warning disable SYSLIB0039 // TLS 1.0/1.1 are obsolete, but Envoy lets an operator ask for them.
            protocols |= v switch
            {
                10 => SslProtocols.Tls,
                11 => SslProtocols.Tls11,
                12 => SslProtocols.Tls12,
                _ => SslProtocols.Tls13,
            };
#pragma warning restore SYSLIB0039
        }

        CipherSuitesPolicy? ciphers = null;
        var names = new List<string>();
        if (proto is { CipherSuites.Count: > 0 })
        {
            var suites = new List<TlsCipherSuite>(CipherSuiteNames.Tls13);
            for (var i = 0; i < proto.CipherSuites.Count; i++)
            {
                // BoringSSL's equal-preference groups "[A|B]" keep their members' order here.
                foreach (var name in proto.CipherSuites[i].Trim('[', ']').Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                {
                    if (name.StartsWith('-') || name.StartsWith('!'))
                    {
                        continue;
                    }

                    if (!CipherSuiteNames.TryParse(name, out var suite))
                    {
                        errors.Add(FieldPath.Index(FieldPath.Field(path, "cipher_suites"), i), $"Failed to initialize cipher suites {name}: unknown cipher");
                        return null;
                    }

                    if (!suites.Contains(suite))
                    {
                        suites.Add(suite);
                        names.Add(name);
                    }
                }
            }

            if (OperatingSystem.IsWindows())
            {
                errors.Add(FieldPath.Field(path, "cipher_suites"), "cipher_suites cannot be applied on Windows (SChannel takes the system's list)");
                return null;
            }

            ciphers = new CipherSuitesPolicy(suites);
        }

        return new TlsParameters(protocols, ciphers, minVersion, maxVersion, names);
    }

    /// <summary>Envoy's version names for <c>ssl.versions.*</c>.</summary>
    public static string VersionName(SslProtocols protocol) => protocol switch
    {
        SslProtocols.Tls13 => "TLSv1.3",
        SslProtocols.Tls12 => "TLSv1.2",
#pragma warning disable SYSLIB0039
        SslProtocols.Tls11 => "TLSv1.1",
        SslProtocols.Tls => "TLSv1",
#pragma warning restore SYSLIB0039
        _ => protocol.ToString(),
    };

    private static int Version(Proto.Types.TlsProtocol protocol) => protocol switch
    {
        Proto.Types.TlsProtocol.Tlsv10 => 10,
        Proto.Types.TlsProtocol.Tlsv11 => 11,
        Proto.Types.TlsProtocol.Tlsv12 => 12,
        _ => 13,
    };
}
