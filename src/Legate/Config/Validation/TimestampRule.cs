using Google.Protobuf.WellKnownTypes;
using Validate;

namespace Legate.Config.Validation;

/// <summary>
/// TimestampRules: the fixed bounds compare like numbers; <c>lt_now</c>, <c>gt_now</c> and
/// <c>within</c> compare against the clock when the value is checked, as PGV does.
/// </summary>
internal sealed class TimestampRule : ValueRule
{
    private readonly Func<Int128, string?>[] _fixed;
    private readonly Func<Int128, Int128, string?>? _relative;
    private readonly string _invalid;

    public TimestampRule(TimestampRules rules, string subject)
    {
        _invalid = $"{subject} is not a valid timestamp";
        _fixed = NumberChecks<Int128>.Build(rules, static o => Durations.Nanos((Timestamp)o), RuleText.Timestamp, subject).ToArray();
        _relative = Relative(rules, subject);
    }

    public override void Check(object value, string path, ConfigErrors errors)
    {
        var t = (Timestamp)value;
        if (!Durations.IsValid(t))
        {
            errors.Add(path, _invalid);
            return;
        }

        var nanos = Durations.Nanos(t);
        foreach (var check in _fixed)
        {
            if (check(nanos) is { } message)
            {
                errors.Add(path, message);
            }
        }

        if (_relative?.Invoke(nanos, Durations.Now()) is { } relative)
        {
            errors.Add(path, relative);
        }
    }

    private static Func<Int128, Int128, string?>? Relative(TimestampRules rules, string subject)
    {
        if (rules.Within is { } within)
        {
            var w = Durations.Nanos(within);
            var text = RuleText.Duration(w);
            if (rules.LtNow)
            {
                var message = $"{subject} must be less than now within {text}";
                return (t, now) => t > now || t < now - w ? message : null;
            }

            if (rules.GtNow)
            {
                var message = $"{subject} must be greater than now within {text}";
                return (t, now) => t < now || t > now + w ? message : null;
            }

            var near = $"{subject} must be within {text} of now";
            return (t, now) => t >= now + w || t <= now - w ? near : null;
        }

        if (rules.LtNow)
        {
            var message = $"{subject} must be less than now";
            return (t, now) => t >= now ? message : null;
        }

        if (rules.GtNow)
        {
            var message = $"{subject} must be greater than now";
            return (t, now) => t <= now ? message : null;
        }

        return null;
    }
}
