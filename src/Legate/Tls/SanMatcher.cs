using Envoy.Extensions.TransportSockets.Tls.V3;
using Legate.Config;
using Legate.Router.Matching;

namespace Legate.Tls;

/// <summary>
/// One <c>match_typed_subject_alt_names</c> entry: a SAN type and a string matcher. As in Envoy,
/// a DNS SAN with an <c>exact</c> matcher also matches through a wildcard certificate name
/// (<c>*.example.com</c> covers the matcher's <c>api.example.com</c>).
/// </summary>
internal sealed class SanMatcher
{
    private readonly SubjectAltNameMatcher.Types.SanType _type;
    private readonly CompiledStringMatcher _matcher;
    private readonly string? _exactDns;

    private SanMatcher(SubjectAltNameMatcher.Types.SanType type, CompiledStringMatcher matcher, string? exactDns)
    {
        _type = type;
        _matcher = matcher;
        _exactDns = exactDns;
    }

    public static SanMatcher? Create(SubjectAltNameMatcher proto, string path, ConfigErrors errors)
    {
        if (proto.SanType is SubjectAltNameMatcher.Types.SanType.OtherName or SubjectAltNameMatcher.Types.SanType.Unspecified)
        {
            errors.Add(FieldPath.Field(path, "san_type"), $"SAN type {proto.SanType} is not supported; use DNS, URI, EMAIL or IP_ADDRESS");
            return null;
        }

        var matcher = CompiledStringMatcher.Create(proto.Matcher, errors, FieldPath.Field(path, "matcher"));
        if (matcher is null)
        {
            return null;
        }

        var exactDns = proto.SanType == SubjectAltNameMatcher.Types.SanType.Dns
            && proto.Matcher.MatchPatternCase == Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.Exact
            ? proto.Matcher.Exact
            : null;
        return new SanMatcher(proto.SanType, matcher, exactDns);
    }

    /// <summary>A legacy <c>match_subject_alt_names</c> entry: matched against every SAN type.</summary>
    public static SanMatcher? CreateUntyped(Envoy.Type.Matcher.V3.StringMatcher proto, string path, ConfigErrors errors)
    {
        var matcher = CompiledStringMatcher.Create(proto, errors, path);
        return matcher is null ? null : new SanMatcher(SubjectAltNameMatcher.Types.SanType.Unspecified, matcher, null);
    }

    public bool Matches(CertificateNames names) => _type switch
    {
        SubjectAltNameMatcher.Types.SanType.Dns => MatchesDns(names.Dns),
        SubjectAltNameMatcher.Types.SanType.Uri => MatchesAny(names.Uri),
        SubjectAltNameMatcher.Types.SanType.Email => MatchesAny(names.Email),
        SubjectAltNameMatcher.Types.SanType.IpAddress => MatchesAny(names.IpAddress),
        _ => MatchesDns(names.Dns) || MatchesAny(names.Uri) || MatchesAny(names.Email) || MatchesAny(names.IpAddress),
    };

    private bool MatchesDns(string[] values)
    {
        foreach (var value in values)
        {
            if (_exactDns is not null ? DnsNames.Match(value, _exactDns) : _matcher.Match(value))
            {
                return true;
            }
        }

        return false;
    }

    private bool MatchesAny(string[] values)
    {
        foreach (var value in values)
        {
            if (_matcher.Match(value))
            {
                return true;
            }
        }

        return false;
    }
}
