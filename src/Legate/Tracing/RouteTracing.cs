using Legate.Config;
using FractionalPercent = Envoy.Type.V3.FractionalPercent;

namespace Legate.Tracing;

/// <summary>
/// A route's <c>tracing</c> block (Envoy's RouteTracingImpl): when a route has one, its
/// <c>client_sampling</c>, <c>random_sampling</c> and <c>overall_sampling</c> replace the connection
/// manager's for requests on that route, each defaulting to 100% when unset (not to the connection
/// manager's value), and its <c>custom_tags</c> are set after the connection manager's, so a route
/// tag wins over one of the same name.
/// </summary>
internal sealed class RouteTracing
{
    private static readonly (uint Numerator, uint Denominator) s_all = (100, 100);

    public (uint Numerator, uint Denominator) ClientSampling { get; private init; } = s_all;

    public (uint Numerator, uint Denominator) RandomSampling { get; private init; } = s_all;

    public (uint Numerator, uint Denominator) OverallSampling { get; private init; } = s_all;

    public CustomTag[] CustomTags { get; private init; } = [];

    public static RouteTracing Compile(Envoy.Config.Route.V3.Tracing tracing, string path, ConfigErrors errors)
    {
        var tags = new List<CustomTag>();
        for (var i = 0; i < tracing.CustomTags.Count; i++)
        {
            if (CustomTag.Compile(tracing.CustomTags[i], FieldPath.Index(FieldPath.Field(path, "custom_tags"), i), errors) is { } tag)
            {
                tags.Add(tag);
            }
        }

        return new RouteTracing
        {
            ClientSampling = Fraction(tracing.ClientSampling),
            RandomSampling = Fraction(tracing.RandomSampling),
            OverallSampling = Fraction(tracing.OverallSampling),
            CustomTags = [.. tags],
        };
    }

    private static (uint, uint) Fraction(FractionalPercent? percent) => percent is null
        ? s_all
        : (percent.Numerator, percent.Denominator switch
        {
            FractionalPercent.Types.DenominatorType.TenThousand => 10_000u,
            FractionalPercent.Types.DenominatorType.Million => 1_000_000u,
            _ => 100u,
        });
}
