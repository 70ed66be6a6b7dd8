using System.Collections.Frozen;
using System.Net.Security;

namespace Legate.Tls;

/// <summary>
/// OpenSSL/BoringSSL cipher names (what Envoy configures in <c>cipher_suites</c> and puts in
/// <c>ssl.ciphers.*</c> and <c>%DOWNSTREAM_TLS_CIPHER%</c>) ↔ .NET's IANA-named <see cref="TlsCipherSuite"/>.
/// </summary>
internal static class CipherSuiteNames
{
    private static readonly (string Name, TlsCipherSuite Suite)[] s_table =
    [
        ("ECDHE-ECDSA-AES128-GCM-SHA256", TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
        ("ECDHE-RSA-AES128-GCM-SHA256", TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
        ("ECDHE-ECDSA-AES256-GCM-SHA384", TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
        ("ECDHE-RSA-AES256-GCM-SHA384", TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
        ("ECDHE-ECDSA-CHACHA20-POLY1305", TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
        ("ECDHE-RSA-CHACHA20-POLY1305", TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
        ("ECDHE-PSK-CHACHA20-POLY1305", TlsCipherSuite.TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256),
        ("ECDHE-ECDSA-AES128-SHA", TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA),
        ("ECDHE-RSA-AES128-SHA", TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA),
        ("ECDHE-PSK-AES128-CBC-SHA", TlsCipherSuite.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA),
        ("ECDHE-ECDSA-AES256-SHA", TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA),
        ("ECDHE-RSA-AES256-SHA", TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA),
        ("ECDHE-PSK-AES256-CBC-SHA", TlsCipherSuite.TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA),
        ("ECDHE-ECDSA-AES128-SHA256", TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256),
        ("ECDHE-RSA-AES128-SHA256", TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256),
        ("ECDHE-ECDSA-AES256-SHA384", TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384),
        ("ECDHE-RSA-AES256-SHA384", TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384),
        ("AES128-GCM-SHA256", TlsCipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256),
        ("AES256-GCM-SHA384", TlsCipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384),
        ("AES128-SHA", TlsCipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA),
        ("AES256-SHA", TlsCipherSuite.TLS_RSA_WITH_AES_256_CBC_SHA),
        ("PSK-AES128-CBC-SHA", TlsCipherSuite.TLS_PSK_WITH_AES_128_CBC_SHA),
        ("PSK-AES256-CBC-SHA", TlsCipherSuite.TLS_PSK_WITH_AES_256_CBC_SHA),
        ("DES-CBC3-SHA", TlsCipherSuite.TLS_RSA_WITH_3DES_EDE_CBC_SHA),
        ("TLS_AES_128_GCM_SHA256", TlsCipherSuite.TLS_AES_128_GCM_SHA256),
        ("TLS_AES_256_GCM_SHA384", TlsCipherSuite.TLS_AES_256_GCM_SHA384),
        ("TLS_CHACHA20_POLY1305_SHA256", TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256),
    ];

    private static readonly FrozenDictionary<string, TlsCipherSuite> s_byName = s_table.ToFrozenDictionary(e => e.Name, e => e.Suite, StringComparer.Ordinal);
    private static readonly FrozenDictionary<TlsCipherSuite, string> s_bySuite = s_table.ToFrozenDictionary(e => e.Suite, e => e.Name);

    /// <summary>The TLS 1.3 suites: always enabled, as in BoringSSL (cipher_suites only governs TLS 1.2 and below).</summary>
    public static readonly TlsCipherSuite[] Tls13 =
        [TlsCipherSuite.TLS_AES_128_GCM_SHA256, TlsCipherSuite.TLS_AES_256_GCM_SHA384, TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256];

    public static bool TryParse(string name, out TlsCipherSuite suite) => s_byName.TryGetValue(name, out suite);

    /// <summary>The OpenSSL name of <paramref name="suite"/>, or its IANA name when it has none here.</summary>
    public static string NameOf(TlsCipherSuite suite) => s_bySuite.TryGetValue(suite, out var name) ? name : suite.ToString();
}
