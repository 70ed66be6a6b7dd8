using System.Numerics;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using Validate;

namespace Legate.Config.Validation;

/// <summary>
/// Turns one <see cref="FieldRules"/> into the checks for a value of a given field type. The
/// rule kind must match the value's type (or, for the scalar kinds, the type wrapped by a
/// google.protobuf wrapper message, which PGV checks when the wrapper is set); a mismatch can
/// only come from a broken .proto and yields no checks rather than a crash.
/// </summary>
internal static class RuleFactory
{
    /// <param name="rules">The annotation.</param>
    /// <param name="valueField">The field whose values are checked (for a map: its key or value field).</param>
    /// <param name="subject">How messages name the value: "value", or "key" for map keys.</param>
    public static ValueRule? Create(FieldRules rules, FieldDescriptor valueField, string subject = "value")
    {
        return rules.TypeCase switch
        {
            FieldRules.TypeOneofCase.Float when Is(valueField, FieldType.Float, FloatValue.Descriptor) => Numbers<float>(rules.Float, subject),
            FieldRules.TypeOneofCase.Double when Is(valueField, FieldType.Double, DoubleValue.Descriptor) => Numbers<double>(rules.Double, subject),
            FieldRules.TypeOneofCase.Int32 when Is(valueField, FieldType.Int32, Int32Value.Descriptor) => Numbers<int>(rules.Int32, subject),
            FieldRules.TypeOneofCase.Int64 when Is(valueField, FieldType.Int64, Int64Value.Descriptor) => Numbers<long>(rules.Int64, subject),
            FieldRules.TypeOneofCase.Uint32 when Is(valueField, FieldType.UInt32, UInt32Value.Descriptor) => Numbers<uint>(rules.Uint32, subject),
            FieldRules.TypeOneofCase.Uint64 when Is(valueField, FieldType.UInt64, UInt64Value.Descriptor) => Numbers<ulong>(rules.Uint64, subject),
            FieldRules.TypeOneofCase.Sint32 when Is(valueField, FieldType.SInt32) => Numbers<int>(rules.Sint32, subject),
            FieldRules.TypeOneofCase.Sint64 when Is(valueField, FieldType.SInt64) => Numbers<long>(rules.Sint64, subject),
            FieldRules.TypeOneofCase.Fixed32 when Is(valueField, FieldType.Fixed32) => Numbers<uint>(rules.Fixed32, subject),
            FieldRules.TypeOneofCase.Fixed64 when Is(valueField, FieldType.Fixed64) => Numbers<ulong>(rules.Fixed64, subject),
            FieldRules.TypeOneofCase.Sfixed32 when Is(valueField, FieldType.SFixed32) => Numbers<int>(rules.Sfixed32, subject),
            FieldRules.TypeOneofCase.Sfixed64 when Is(valueField, FieldType.SFixed64) => Numbers<long>(rules.Sfixed64, subject),
            FieldRules.TypeOneofCase.Bool when Is(valueField, FieldType.Bool, BoolValue.Descriptor) => Bool(rules.Bool, subject),
            FieldRules.TypeOneofCase.String when Is(valueField, FieldType.String, StringValue.Descriptor) => Strings.Create(rules.String, subject),
            FieldRules.TypeOneofCase.Bytes when Is(valueField, FieldType.Bytes, BytesValue.Descriptor) => BytesChecks.Create(rules.Bytes, subject),
            FieldRules.TypeOneofCase.Enum when valueField.FieldType == FieldType.Enum => Enum(rules.Enum, valueField.EnumType, subject),
            FieldRules.TypeOneofCase.Duration when IsMessage(valueField, Google.Protobuf.WellKnownTypes.Duration.Descriptor) => new DurationRule(rules.Duration, subject),
            FieldRules.TypeOneofCase.Timestamp when IsMessage(valueField, Google.Protobuf.WellKnownTypes.Timestamp.Descriptor) => new TimestampRule(rules.Timestamp, subject),
            FieldRules.TypeOneofCase.Any when IsMessage(valueField, Google.Protobuf.WellKnownTypes.Any.Descriptor) => Any(rules.Any),
            _ => null,
        };
    }

    /// <summary>Whether the value is required: <c>message.required</c> or the <c>required</c> of Duration/Timestamp/Any rules.</summary>
    public static bool IsRequired(FieldRules rules) =>
        rules.Message?.Required == true
        || (rules.TypeCase == FieldRules.TypeOneofCase.Duration && rules.Duration.Required)
        || (rules.TypeCase == FieldRules.TypeOneofCase.Timestamp && rules.Timestamp.Required)
        || (rules.TypeCase == FieldRules.TypeOneofCase.Any && rules.Any.Required);

    private static bool Is(FieldDescriptor field, FieldType type, MessageDescriptor? wrapper = null) =>
        field.FieldType == type || (wrapper is not null && IsMessage(field, wrapper));

    private static bool IsMessage(FieldDescriptor field, MessageDescriptor type) =>
        field.FieldType == FieldType.Message && field.MessageType.FullName == type.FullName;

    private static ValueRule? Numbers<T>(IMessage rules, string subject)
        where T : struct, INumber<T>
    {
        var checks = NumberChecks<T>.Build(rules, static o => (T)o, RuleText.Number, subject);
        var ignoreEmpty = rules.Descriptor.FindFieldByName("ignore_empty") is { } f && (bool)f.Accessor.GetValue(rules);
        return Finish(static o => (T)o, ignoreEmpty ? static v => T.IsZero(v) : null, checks);
    }

    private static ValueRule? Bool(BoolRules rules, string subject)
    {
        if (!rules.HasConst)
        {
            return null;
        }

        var constant = rules.Const;
        var message = $"{subject} must equal {(constant ? "true" : "false")}";
        return new ValueChecks<bool>(static o => (bool)o, null, [v => v == constant ? null : message]);
    }

    private static ValueRule? Enum(EnumRules rules, EnumDescriptor type, string subject)
    {
        // Names read better than numbers, and they are what YAML configs use.
        string Name(int n) => type.FindValueByNumber(n)?.Name ?? n.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var checks = new List<Func<int, string?>>();
        if (rules.HasConst)
        {
            var constant = rules.Const;
            var message = $"{subject} must equal {Name(constant)}";
            checks.Add(v => v == constant ? null : message);
        }

        if (rules.DefinedOnly)
        {
            var message = $"{subject} must be one of the defined enum values";
            var defined = type.Values.Select(v => v.Number).ToHashSet();
            checks.Add(v => defined.Contains(v) ? null : message);
        }

        if (rules.In.Count > 0)
        {
            var allowed = rules.In.ToHashSet();
            var message = $"{subject} must be in list {RuleText.List(rules.In, Name)}";
            checks.Add(v => allowed.Contains(v) ? null : message);
        }

        if (rules.NotIn.Count > 0)
        {
            var denied = rules.NotIn.ToHashSet();
            var message = $"{subject} must not be in list {RuleText.List(rules.NotIn, Name)}";
            checks.Add(v => denied.Contains(v) ? message : null);
        }

        // The reflected value is the generated C# enum, boxed; Convert reads its number.
        return Finish(static o => Convert.ToInt32(o, System.Globalization.CultureInfo.InvariantCulture), null, checks);
    }

    private static ValueRule? Any(AnyRules rules)
    {
        var checks = new List<Func<Any, string?>>();
        if (rules.In.Count > 0)
        {
            var allowed = rules.In.ToHashSet(StringComparer.Ordinal);
            var list = RuleText.List(rules.In, RuleText.Quote);
            checks.Add(a => allowed.Contains(a.TypeUrl) ? null : $"type URL {RuleText.Quote(a.TypeUrl)} is not one of the allowed types {list}");
        }

        if (rules.NotIn.Count > 0)
        {
            var denied = rules.NotIn.ToHashSet(StringComparer.Ordinal);
            checks.Add(a => denied.Contains(a.TypeUrl) ? $"type URL {RuleText.Quote(a.TypeUrl)} is not allowed" : null);
        }

        return Finish(static o => (Any)o, null, checks);
    }

    private static ValueChecks<T>? Finish<T>(Func<object, T> read, Func<T, bool>? skip, List<Func<T, string?>> checks) =>
        checks.Count == 0 ? null : new ValueChecks<T>(read, skip, checks.ToArray());

    /// <summary>StringRules.</summary>
    internal static class Strings
    {
        // PGV's well-known header regexes, with the same real control characters in them.
        public const string HeaderNameStrict = "^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$";
        public const string HeaderValueStrict = "^[^\u0000-\u0008\u000A-\u001F\u007F]*$";
        public const string HeaderLoose = "^[^\u0000\u000A\u000D]*$";

        public static ValueRule? Create(StringRules r, string subject)
        {
            var checks = new List<Func<string, string?>>();
            if (r.HasConst)
            {
                var constant = r.Const;
                var message = $"{subject} must equal {RuleText.Quote(constant)}";
                checks.Add(v => v == constant ? null : message);
            }

            if (r.In.Count > 0)
            {
                var allowed = r.In.ToHashSet(StringComparer.Ordinal);
                var message = $"{subject} must be in list {RuleText.List(r.In, RuleText.Quote)}";
                checks.Add(v => allowed.Contains(v) ? null : message);
            }

            if (r.NotIn.Count > 0)
            {
                var denied = r.NotIn.ToHashSet(StringComparer.Ordinal);
                var message = $"{subject} must not be in list {RuleText.List(r.NotIn, RuleText.Quote)}";
                checks.Add(v => denied.Contains(v) ? message : null);
            }

            // Lengths in characters count Unicode code points, as PGV counts runes.
            AddLength(checks, r.HasLen ? r.Len : null, r.HasMinLen ? r.MinLen : null, r.HasMaxLen ? r.MaxLen : null, subject, "characters", CodePoints);
            AddLength(checks, r.HasLenBytes ? r.LenBytes : null, r.HasMinBytes ? r.MinBytes : null, r.HasMaxBytes ? r.MaxBytes : null, subject, "bytes", static v => (ulong)Encoding.UTF8.GetByteCount(v));

            if (r.HasPrefix)
            {
                var prefix = r.Prefix;
                var message = $"{subject} does not have prefix {RuleText.Quote(prefix)}";
                checks.Add(v => v.StartsWith(prefix, StringComparison.Ordinal) ? null : message);
            }

            if (r.HasSuffix)
            {
                var suffix = r.Suffix;
                var message = $"{subject} does not have suffix {RuleText.Quote(suffix)}";
                checks.Add(v => v.EndsWith(suffix, StringComparison.Ordinal) ? null : message);
            }

            if (r.HasContains)
            {
                var part = r.Contains;
                var message = $"{subject} does not contain substring {RuleText.Quote(part)}";
                checks.Add(v => v.Contains(part, StringComparison.Ordinal) ? null : message);
            }

            if (r.HasNotContains)
            {
                var part = r.NotContains;
                var message = $"{subject} contains substring {RuleText.Quote(part)}";
                checks.Add(v => v.Contains(part, StringComparison.Ordinal) ? message : null);
            }

            if (WellKnown(r, subject) is { } wellKnown)
            {
                checks.Add(wellKnown);
            }

            if (r.HasPattern && Pattern(r.Pattern, subject) is { } pattern)
            {
                checks.Add(pattern);
            }

            return Finish(static o => (string)o, r.IgnoreEmpty ? static v => v.Length == 0 : null, checks);
        }

        public static Func<string, string?>? Pattern(string pattern, string subject)
        {
            // A pattern .NET cannot compile is the proto's problem, not the config's; a test
            // checks that every pattern of the API snapshot compiles.
            var regex = Re2Regex.Get(pattern);
            if (regex is null)
            {
                return null;
            }

            var message = $"{subject} does not match regex pattern {RuleText.Quote(pattern)}";
            return v => regex.IsMatch(v) ? null : message;
        }

        private static Func<string, string?>? WellKnown(StringRules r, string subject)
        {
            Func<string, string?> Flag(Func<string, bool> ok, string what)
            {
                var message = $"{subject} must be {what}";
                return v => ok(v) ? null : message;
            }

            return r.WellKnownCase switch
            {
                StringRules.WellKnownOneofCase.Email when r.Email => v => WellKnownFormats.EmailProblem(v) is { } why ? $"{subject} must be a valid email address ({why})" : null,
                StringRules.WellKnownOneofCase.Hostname when r.Hostname => v => WellKnownFormats.HostnameProblem(v) is { } why ? $"{subject} must be a valid hostname ({why})" : null,
                StringRules.WellKnownOneofCase.Ip when r.Ip => Flag(WellKnownFormats.IsIp, "a valid IP address"),
                StringRules.WellKnownOneofCase.Ipv4 when r.Ipv4 => Flag(WellKnownFormats.IsIpv4, "a valid IPv4 address"),
                StringRules.WellKnownOneofCase.Ipv6 when r.Ipv6 => Flag(WellKnownFormats.IsIpv6, "a valid IPv6 address"),
                StringRules.WellKnownOneofCase.Uri when r.Uri => Flag(WellKnownFormats.IsAbsoluteUri, "a valid absolute URI"),
                StringRules.WellKnownOneofCase.UriRef when r.UriRef => Flag(WellKnownFormats.IsUriReference, "a valid URI reference"),
                StringRules.WellKnownOneofCase.Address when r.Address => Flag(v => WellKnownFormats.HostnameProblem(v) is null || WellKnownFormats.IsIp(v), "a valid hostname or IP address"),
                StringRules.WellKnownOneofCase.Uuid when r.Uuid => Flag(WellKnownFormats.IsUuid, "a valid UUID"),
                StringRules.WellKnownOneofCase.WellKnownRegex => r.WellKnownRegex switch
                {
                    // With strict: false, PGV only rejects NUL, CR and LF, for names and values alike.
                    KnownRegex.HttpHeaderName => Pattern(r.Strict ? HeaderNameStrict : HeaderLoose, subject),
                    KnownRegex.HttpHeaderValue => Pattern(r.Strict ? HeaderValueStrict : HeaderLoose, subject),
                    _ => null,
                },
                _ => null,
            };
        }

        private static ulong CodePoints(string v)
        {
            ulong n = 0;
            foreach (var c in v)
            {
                // A low surrogate completes a pair already counted; a lone one counts as one.
                if (!char.IsLowSurrogate(c))
                {
                    n++;
                }
            }

            return n;
        }
    }

    /// <summary>Adds the exact/min/max length checks, merged the way PGV words them.</summary>
    internal static void AddLength<T>(List<Func<T, string?>> checks, ulong? exact, ulong? min, ulong? max, string subject, string unit, Func<T, ulong> length)
    {
        // An explicit `min_len: 0` (HeaderValue.raw_value has one) bounds nothing.
        if (min == 0)
        {
            min = null;
        }

        if (exact is null && min is not null && min == max)
        {
            exact = min;
        }

        if (exact is { } n)
        {
            var message = $"{subject} length must be {n} {unit}";
            checks.Add(v => length(v) == n ? null : message);
        }
        else if (min is { } lo && max is { } hi)
        {
            var message = $"{subject} length must be between {lo} and {hi} {unit}, inclusive";
            checks.Add(v => length(v) is var l && l >= lo && l <= hi ? null : message);
        }
        else if (min is { } atLeast)
        {
            var message = $"{subject} length must be at least {atLeast} {unit}";
            checks.Add(v => length(v) >= atLeast ? null : message);
        }
        else if (max is { } atMost)
        {
            var message = $"{subject} length must be at most {atMost} {unit}";
            checks.Add(v => length(v) <= atMost ? null : message);
        }
    }
}
