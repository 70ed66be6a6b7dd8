using System.Collections;
using System.Numerics;
using Google.Protobuf;

namespace Legate.Config.Validation;

/// <summary>
/// Builds the <c>const</c>, <c>lt</c>/<c>lte</c>/<c>gt</c>/<c>gte</c>, <c>in</c> and <c>not_in</c>
/// checks shared by the twelve numeric rule messages and by DurationRules/TimestampRules. They
/// all use the same field names, so the rules message is read through its descriptor instead of
/// fourteen hand-written copies; <c>convert</c> turns a bound into <typeparamref name="T"/>
/// (a scalar as is, a Duration into nanoseconds).
/// </summary>
internal static class NumberChecks<T>
    where T : struct, INumber<T>
{
    public static List<Func<T, string?>> Build(IMessage rules, Func<object, T> convert, Func<T, string> format, string subject)
    {
        var checks = new List<Func<T, string?>>();
        var fields = rules.Descriptor;

        T? Optional(string name)
        {
            var field = fields.FindFieldByName(name);
            return field is not null && field.Accessor.HasValue(rules) ? convert(field.Accessor.GetValue(rules)) : null;
        }

        T[] Repeated(string name)
        {
            var field = fields.FindFieldByName(name);
            return field is null ? [] : ((IList)field.Accessor.GetValue(rules)).Cast<object>().Select(convert).ToArray();
        }

        if (Optional("const") is { } constant)
        {
            var message = $"{subject} must equal {format(constant)}";
            checks.Add(v => v == constant ? null : message);
        }

        if (Range.Create(Optional("lt"), Optional("lte"), Optional("gt"), Optional("gte"), format, subject) is { } range)
        {
            checks.Add(v => range.Fails(v) ? range.Message : null);
        }

        var allowed = Repeated("in");
        if (allowed.Length > 0)
        {
            var message = $"{subject} must be in list {RuleText.List(allowed, format)}";
            checks.Add(v => Array.IndexOf(allowed, v) >= 0 ? null : message);
        }

        var denied = Repeated("not_in");
        if (denied.Length > 0)
        {
            var message = $"{subject} must not be in list {RuleText.List(denied, format)}";
            checks.Add(v => Array.IndexOf(denied, v) >= 0 ? message : null);
        }

        return checks;
    }

    /// <summary>
    /// A lower and/or upper bound. <c>lt</c> wins over <c>lte</c> and <c>gt</c> over <c>gte</c>,
    /// as in PGV. When both bounds are set and the upper one is not above the lower one
    /// (e.g. <c>lt: 10, gt: 20</c>), PGV reads them as an exclusive range: the value must lie
    /// outside <c>[10, 20]</c>.
    /// </summary>
    internal sealed class Range
    {
        private readonly T? _lower;
        private readonly T? _upper;
        private readonly bool _lowerInclusive;
        private readonly bool _upperInclusive;
        private readonly bool _outside;

        private Range(T? lower, bool lowerInclusive, T? upper, bool upperInclusive, Func<T, string> format, string subject)
        {
            _lower = lower;
            _upper = upper;
            _lowerInclusive = lowerInclusive;
            _upperInclusive = upperInclusive;
            if (lower is { } lo && upper is { } hi)
            {
                _outside = hi <= lo;
                Message = _outside
                    ? $"{subject} must be outside range {(upperInclusive ? "(" : "[")}{format(hi)}, {format(lo)}{(lowerInclusive ? ")" : "]")}"
                    : $"{subject} must be inside range {(lowerInclusive ? "[" : "(")}{format(lo)}, {format(hi)}{(upperInclusive ? "]" : ")")}";
            }
            else if (upper is { } u)
            {
                Message = $"{subject} must be less than {(upperInclusive ? "or equal to " : string.Empty)}{format(u)}";
            }
            else
            {
                Message = $"{subject} must be greater than {(lowerInclusive ? "or equal to " : string.Empty)}{format(lower!.Value)}";
            }
        }

        public string Message { get; }

        public static Range? Create(T? lt, T? lte, T? gt, T? gte, Func<T, string> format, string subject)
        {
            var upper = lt ?? lte;
            var lower = gt ?? gte;
            if (upper is null && lower is null)
            {
                return null;
            }

            return new Range(lower, gt is null, upper, lt is null, format, subject);
        }

        public bool Fails(T v)
        {
            // Written as "is the value on the wrong side" so that NaN passes, as it does in PGV.
            var belowLower = _lower is { } lo && (_lowerInclusive ? v < lo : v <= lo);
            var aboveUpper = _upper is { } hi && (_upperInclusive ? v > hi : v >= hi);
            return _outside ? belowLower && aboveUpper : belowLower || aboveUpper;
        }
    }
}
