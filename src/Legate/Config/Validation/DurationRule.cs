using Google.Protobuf.WellKnownTypes;
using Validate;

namespace Legate.Config.Validation;

/// <summary>
/// DurationRules: the bounds and lists compare nanoseconds. Any DurationRules, even a lone
/// <c>required</c>, make PGV check first that the value is a well-formed Duration; a malformed
/// one is reported alone, since comparing it would only add noise.
/// </summary>
internal sealed class DurationRule : ValueRule
{
    private readonly Func<Int128, string?>[] _checks;
    private readonly string _invalid;

    public DurationRule(DurationRules rules, string subject)
    {
        _invalid = $"{subject} is not a valid duration";
        _checks = NumberChecks<Int128>.Build(rules, static o => Durations.Nanos((Duration)o), RuleText.Duration, subject).ToArray();
    }

    public override void Check(object value, string path, ConfigErrors errors)
    {
        var d = (Duration)value;
        if (!Durations.IsValid(d))
        {
            errors.Add(path, _invalid);
            return;
        }

        var nanos = Durations.Nanos(d);
        foreach (var check in _checks)
        {
            if (check(nanos) is { } message)
            {
                errors.Add(path, message);
            }
        }
    }
}
