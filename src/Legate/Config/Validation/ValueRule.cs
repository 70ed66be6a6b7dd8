namespace Legate.Config.Validation;

/// <summary>
/// The checks of one <c>(validate.rules)</c> annotation applied to one value: a singular field,
/// one item of a repeated field, or one key or value of a map. Built once per field, then
/// reused for every message checked.
/// </summary>
internal abstract class ValueRule
{
    /// <summary>Adds one error per violated rule. <paramref name="value"/> is never null.</summary>
    public abstract void Check(object value, string path, ConfigErrors errors);
}

/// <summary>
/// A list of checks over a value read as <typeparamref name="T"/>. Each check returns the error
/// message, or null when the value passes; every failing check is reported, not only the first.
/// </summary>
internal sealed class ValueChecks<T> : ValueRule
{
    private readonly Func<object, T> _read;
    private readonly Func<T, bool>? _skip;
    private readonly Func<T, string?>[] _checks;

    /// <param name="read">Turns the reflected field value into <typeparamref name="T"/>.</param>
    /// <param name="skip">True for values the rules do not apply to (<c>ignore_empty</c>).</param>
    /// <param name="checks">The checks, in PGV's order.</param>
    public ValueChecks(Func<object, T> read, Func<T, bool>? skip, Func<T, string?>[] checks)
    {
        _read = read;
        _skip = skip;
        _checks = checks;
    }

    public override void Check(object value, string path, ConfigErrors errors)
    {
        var v = _read(value);
        if (_skip?.Invoke(v) == true)
        {
            return;
        }

        foreach (var check in _checks)
        {
            if (check(v) is { } message)
            {
                errors.Add(path, message);
            }
        }
    }
}
