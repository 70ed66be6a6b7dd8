using Envoy.Config.Core.V3;
using Google.Protobuf.Collections;
using Legate.Config;
using Legate.Http;
using Legate.Router.Actions;
using HeaderMutationConfig = Envoy.Extensions.Http.EarlyHeaderMutation.HeaderMutation.V3.HeaderMutation;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;
using MutationRule = Envoy.Config.Common.MutationRules.V3.HeaderMutation;

namespace Legate.Extensions.Http.EarlyHeaderMutation;

/// <summary>
/// The HTTP connection manager's <c>early_header_mutation_extensions</c>
/// (<c>envoy.http.early_header_mutation.header_mutation</c>): request header removals and appends
/// applied in the order configured, extension after extension, before anything else looks at the
/// request (original IP detection, the control-header cleanup, routing, filters). An append's value
/// may use command operators (<c>%DOWNSTREAM_REMOTE_ADDRESS%</c>, <c>%REQ(x)%</c>, …).
/// </summary>
internal sealed class EarlyHeaderMutation
{
    private readonly HeaderMutation[] _steps;

    private EarlyHeaderMutation(HeaderMutation[] steps) => _steps = steps;

    /// <summary>Null when none are configured (or on errors, added to <paramref name="errors"/>).</summary>
    public static EarlyHeaderMutation? Compile(Hcm config, string path, ConfigErrors errors)
    {
        var extensions = config.EarlyHeaderMutationExtensions;
        if (extensions.Count == 0)
        {
            return null;
        }

        var listPath = FieldPath.Field(path, "early_header_mutation_extensions");
        var steps = new List<HeaderMutation>();
        for (var i = 0; i < extensions.Count; i++)
        {
            var extensionPath = FieldPath.Index(listPath, i);
            var typed = extensions[i].TypedConfig;
            if (typed is null || !typed.Is(HeaderMutationConfig.Descriptor))
            {
                errors.Add(FieldPath.Field(extensionPath, "typed_config"),
                    $"{typed?.TypeUrl ?? "nothing"} is not an early header mutation extension Legate implements (envoy.http.early_header_mutation.header_mutation)");
                continue;
            }

            var mutations = typed.Unpack<HeaderMutationConfig>().Mutations;
            var mutationsPath = FieldPath.Field(FieldPath.Field(extensionPath, "typed_config"), "mutations");
            for (var m = 0; m < mutations.Count; m++)
            {
                if (Compile(mutations[m], FieldPath.Index(mutationsPath, m), errors) is { } step)
                {
                    steps.Add(step);
                }
            }
        }

        return new EarlyHeaderMutation(steps.ToArray());
    }

    /// <summary>Applies every mutation, in order, to the stream's request headers.</summary>
    public void Apply(HttpStream stream)
    {
        var headers = stream.RequestHeaders.Headers;
        foreach (var step in _steps)
        {
            step.Apply(stream, headers);
        }
    }

    /// <summary>One remove or append, as a single-entry <see cref="HeaderMutation"/> (same value formatting and append actions as the route's).</summary>
    private static HeaderMutation? Compile(MutationRule rule, string path, ConfigErrors errors)
    {
        var add = new RepeatedField<HeaderValueOption>();
        var remove = new RepeatedField<string>();
        switch (rule.ActionCase)
        {
            case MutationRule.ActionOneofCase.Remove:
                remove.Add(rule.Remove);
                break;
            case MutationRule.ActionOneofCase.Append:
                add.Add(rule.Append);
                break;
            default:
                errors.Add(path, "one of remove or append is required");
                return null;
        }

        return HeaderMutation.Compile(add, remove, FieldPath.Field(path, "append"), FieldPath.Field(path, "remove"), errors);
    }
}
