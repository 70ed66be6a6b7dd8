using Envoy.Type.V3;
using Legate.Http.Http1;

namespace Legate.Extensions.Filters.Http.Fault;

/// <summary>
/// A compiled <c>type.v3.FractionalPercent</c> of a fault (Envoy's percentage providers): the
/// fault fires when <c>random % denominator &lt; numerator</c>. With a header-controlled fault the
/// request may lower the numerator with a percentage header, never raise it.
/// </summary>
internal readonly struct FaultPercentage
{
    public FaultPercentage(uint numerator, uint denominator)
    {
        Numerator = numerator;
        Denominator = denominator;
    }

    public uint Numerator { get; }

    /// <summary>100, 10,000 or 1,000,000.</summary>
    public uint Denominator { get; }

    public static FaultPercentage From(FractionalPercent? percent) =>
        percent is null ? new FaultPercentage(0, 100) : new FaultPercentage(percent.Numerator, DenominatorOf(percent.Denominator));

    public static uint DenominatorOf(FractionalPercent.Types.DenominatorType type) => type switch
    {
        FractionalPercent.Types.DenominatorType.TenThousand => 10_000,
        FractionalPercent.Types.DenominatorType.Million => 1_000_000,
        _ => 100,
    };

    /// <summary>Envoy's evaluateFractionalPercent.</summary>
    public bool IsEnabled(ulong randomValue) => randomValue % Denominator < Numerator;

    /// <summary>
    /// The percentage for this request when the fault is header-controlled: the first value of
    /// <paramref name="header"/>, if it is an unsigned integer, caps the numerator (same denominator).
    /// </summary>
    public FaultPercentage WithHeader(HttpHeaderMap headers, string header)
    {
        var i = headers.IndexOf(header.AsSpan());
        if (i < 0 || !FaultHeaders.TryParseUnsigned(headers.GetValueBytes(i), out var value))
        {
            return this;
        }

        return new FaultPercentage((uint)Math.Min(value, Numerator), Denominator);
    }

    public override string ToString() => $"{Numerator}/{Denominator}";
}
