namespace Legate.Router.Matching;

/// <summary>
/// Looks up request headers for route matching. Names are lower-case; a header sent several
/// times has several values, which matchers join with "," as Envoy's getAllOfHeaderAsString does.
/// </summary>
internal interface IHeaderLookup
{
    /// <summary>The number of values of <paramref name="name"/>; 0 when the header is absent.</summary>
    int Count(string name);

    /// <summary>The <paramref name="index"/>-th value of <paramref name="name"/>.</summary>
    string Get(string name, int index);
}

/// <summary>The request facts route matching looks at; built once per request by the caller.</summary>
internal readonly struct RouteMatchInput
{
    public RouteMatchInput(string method, string path, string authority, IHeaderLookup? headers = null, ulong randomValue = 0)
    {
        Method = method;
        Path = path;
        Authority = authority;
        Headers = headers;
        RandomValue = randomValue;
    }

    /// <summary>The :method pseudo-header.</summary>
    public string Method { get; }

    /// <summary>The :path as received, query string and fragment included.</summary>
    public string Path { get; }

    /// <summary>The :authority (or Host) header.</summary>
    public string Authority { get; }

    public IHeaderLookup? Headers { get; }

    /// <summary>Drawn once per request, so every runtime_fraction route sees the same value (as in Envoy).</summary>
    public ulong RandomValue { get; }

    /// <summary>The live runtime (runtime_fraction's runtime_key); null = defaults only (lint, tests).</summary>
    public Legate.Runtime.RuntimeSnapshot? Runtime { get; init; }

    /// <summary>Whether the downstream connection presented a client certificate (tls_context.presented).</summary>
    public bool PeerCertificatePresented { get; init; }

    /// <summary>Whether that certificate was validated (tls_context.validated).</summary>
    public bool PeerCertificateValidated { get; init; }

    /// <summary>The path without its query string and fragment: Envoy matches paths on this.</summary>
    public ReadOnlySpan<char> PathOnly
    {
        get
        {
            var end = Path.AsSpan().IndexOfAny('?', '#');
            return end < 0 ? Path.AsSpan() : Path.AsSpan(0, end);
        }
    }
}

/// <summary>A simple ordered header list, for tests and for <c>legate explain</c>.</summary>
internal sealed class HeaderListLookup : IHeaderLookup
{
    private readonly List<KeyValuePair<string, string>> _headers = new();

    public HeaderListLookup Add(string name, string value)
    {
        _headers.Add(new KeyValuePair<string, string>(name.ToLowerInvariant(), value));
        return this;
    }

    public int Count(string name)
    {
        var n = 0;
        foreach (var h in _headers)
        {
            if (string.Equals(h.Key, name, StringComparison.Ordinal))
            {
                n++;
            }
        }

        return n;
    }

    public string Get(string name, int index)
    {
        foreach (var h in _headers)
        {
            if (string.Equals(h.Key, name, StringComparison.Ordinal) && index-- == 0)
            {
                return h.Value;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(index));
    }
}

/// <summary>A seedable source of the per-request random value used by runtime_fraction.</summary>
internal sealed class RouteRandom
{
    private readonly Random _random;

    public RouteRandom(int? seed = null) => _random = seed is { } s ? new Random(s) : new Random();

    public ulong Next() => (ulong)_random.NextInt64(long.MinValue, long.MaxValue);
}
