using System.Text;
using Google.Protobuf;
using Validate;

namespace Legate.Config.Validation;

/// <summary>BytesRules. The <c>ip</c> formats check the length of a raw address (4 or 16 bytes).</summary>
internal static class BytesChecks
{
    public static ValueRule? Create(BytesRules r, string subject)
    {
        var checks = new List<Func<ByteString, string?>>();
        if (r.HasConst)
        {
            var constant = r.Const;
            var message = $"{subject} must equal {RuleText.Quote(constant)}";
            checks.Add(v => v.Equals(constant) ? null : message);
        }

        if (r.In.Count > 0)
        {
            var allowed = r.In.ToHashSet();
            var message = $"{subject} must be in list {RuleText.List(r.In, RuleText.Quote)}";
            checks.Add(v => allowed.Contains(v) ? null : message);
        }

        if (r.NotIn.Count > 0)
        {
            var denied = r.NotIn.ToHashSet();
            var message = $"{subject} must not be in list {RuleText.List(r.NotIn, RuleText.Quote)}";
            checks.Add(v => denied.Contains(v) ? message : null);
        }

        RuleFactory.AddLength(checks, r.HasLen ? r.Len : null, r.HasMinLen ? r.MinLen : null, r.HasMaxLen ? r.MaxLen : null, subject, "bytes", static v => (ulong)v.Length);

        if (r.HasPrefix)
        {
            var prefix = r.Prefix;
            var message = $"{subject} does not have prefix {RuleText.Quote(prefix)}";
            checks.Add(v => v.Span.StartsWith(prefix.Span) ? null : message);
        }

        if (r.HasSuffix)
        {
            var suffix = r.Suffix;
            var message = $"{subject} does not have suffix {RuleText.Quote(suffix)}";
            checks.Add(v => v.Span.EndsWith(suffix.Span) ? null : message);
        }

        if (r.HasContains)
        {
            var part = r.Contains;
            var message = $"{subject} does not contain {RuleText.Quote(part)}";
            checks.Add(v => v.Span.IndexOf(part.Span) >= 0 ? null : message);
        }

        Func<ByteString, string?>? wellKnown = r.WellKnownCase switch
        {
            BytesRules.WellKnownOneofCase.Ip when r.Ip => Length($"{subject} must be a valid IP address", 4, 16),
            BytesRules.WellKnownOneofCase.Ipv4 when r.Ipv4 => Length($"{subject} must be a valid IPv4 address", 4, 4),
            BytesRules.WellKnownOneofCase.Ipv6 when r.Ipv6 => Length($"{subject} must be a valid IPv6 address", 16, 16),
            _ => null,
        };
        if (wellKnown is not null)
        {
            checks.Add(wellKnown);
        }

        if (r.HasPattern && RuleFactory.Strings.Pattern(r.Pattern, subject) is { } pattern)
        {
            // RE2 matches bytes as UTF-8; invalid sequences become U+FFFD here as they do there.
            checks.Add(v => pattern(Encoding.UTF8.GetString(v.Span)));
        }

        return checks.Count == 0
            ? null
            : new ValueChecks<ByteString>(static o => (ByteString)o, r.IgnoreEmpty ? static v => v.Length == 0 : null, checks.ToArray());
    }

    private static Func<ByteString, string?> Length(string message, int a, int b) =>
        v => v.Length == a || v.Length == b ? null : message;
}
