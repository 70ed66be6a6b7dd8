using Envoy.Config.Core.V3;
using Legate.Config;

namespace Legate.Router.Redirect;

/// <summary>
/// A route's <c>internal_redirect_policy</c>, compiled: which upstream 3xx answers the router
/// follows itself instead of relaying (<c>redirect_response_codes</c>, default 302; only 301, 302,
/// 303, 307 and 308 count, others are ignored as in Envoy), how many times per request
/// (<c>max_internal_redirects</c>, default 1), whether the scheme may change
/// (<c>allow_cross_scheme_redirect</c>), the predicates the target route must pass
/// (<c>previous_routes</c>, <c>allow_listed_routes</c>, <c>safe_cross_scheme</c>) and the response
/// headers copied into the redirected request (<c>response_headers_to_copy</c>).
/// </summary>
internal sealed class InternalRedirectPolicy
{
    public const string PreviousRoutes = "envoy.internal_redirect_predicates.previous_routes";
    public const string AllowListedRoutes = "envoy.internal_redirect_predicates.allow_listed_routes";
    public const string SafeCrossScheme = "envoy.internal_redirect_predicates.safe_cross_scheme";

    private readonly bool[] _codes = new bool[9];

    private InternalRedirectPolicy()
    {
    }

    public uint MaxInternalRedirects { get; private init; } = 1;

    public bool AllowCrossScheme { get; private init; }

    public bool RejectPreviousRoutes { get; private set; }

    public bool RequireSafeCrossScheme { get; private set; }

    /// <summary>allow_listed_routes' names, or null without that predicate.</summary>
    public HashSet<string>? AllowedRoutes { get; private set; }

    /// <summary>Lower-case names of the response headers copied into the redirected request.</summary>
    public string[] ResponseHeadersToCopy { get; private init; } = [];

    /// <summary>Whether an upstream answer with <paramref name="status"/> is followed.</summary>
    public bool Follows(int status) => status is >= 300 and <= 308 && _codes[status - 300];

    public static InternalRedirectPolicy? Compile(Envoy.Config.Route.V3.InternalRedirectPolicy? config, string path, ConfigErrors errors)
    {
        if (config is null)
        {
            return null;
        }

        var headers = new string[config.ResponseHeadersToCopy.Count];
        for (var i = 0; i < headers.Length; i++)
        {
            var name = config.ResponseHeadersToCopy[i];
            if (name.StartsWith(':') || name.Equals("host", StringComparison.OrdinalIgnoreCase))
            {
                errors.Add(FieldPath.Index(FieldPath.Field(path, "response_headers_to_copy"), i), $"'{name}' cannot be copied: pseudo-headers and host are not allowed");
            }

            headers[i] = name.ToLowerInvariant();
        }

        var policy = new InternalRedirectPolicy
        {
            MaxInternalRedirects = config.MaxInternalRedirects ?? 1,
            AllowCrossScheme = config.AllowCrossSchemeRedirect,
            ResponseHeadersToCopy = headers,
        };
        if (config.RedirectResponseCodes.Count == 0)
        {
            policy._codes[2] = true;
        }

        foreach (var code in config.RedirectResponseCodes)
        {
            // Envoy ignores codes other than these five.
            if (code is 301 or 302 or 303 or 307 or 308)
            {
                policy._codes[code - 300] = true;
            }
        }

        for (var i = 0; i < config.Predicates.Count; i++)
        {
            policy.AddPredicate(config.Predicates[i], FieldPath.Index(FieldPath.Field(path, "predicates"), i), errors);
        }

        return policy;
    }

    private void AddPredicate(TypedExtensionConfig predicate, string path, ConfigErrors errors)
    {
        var config = predicate.TypedConfig;
        if (config is null)
        {
            errors.Add(path, "typed_config is required");
        }
        else if (config.Is(Envoy.Extensions.InternalRedirect.PreviousRoutes.V3.PreviousRoutesConfig.Descriptor))
        {
            RejectPreviousRoutes = true;
        }
        else if (config.Is(Envoy.Extensions.InternalRedirect.SafeCrossScheme.V3.SafeCrossSchemeConfig.Descriptor))
        {
            RequireSafeCrossScheme = true;
        }
        else if (config.Is(Envoy.Extensions.InternalRedirect.AllowListedRoutes.V3.AllowListedRoutesConfig.Descriptor))
        {
            AllowedRoutes ??= new HashSet<string>(StringComparer.Ordinal);
            AllowedRoutes.UnionWith(config.Unpack<Envoy.Extensions.InternalRedirect.AllowListedRoutes.V3.AllowListedRoutesConfig>().AllowedRouteNames);
        }
        else
        {
            errors.Add(FieldPath.Field(path, "typed_config"), $"internal redirect predicate '{predicate.Name}' ({config.TypeUrl}) is not supported: only {PreviousRoutes}, {AllowListedRoutes} and {SafeCrossScheme}");
        }
    }

    /// <summary>Envoy's predicates on the route a redirect would reach; false rejects the redirect.</summary>
    public bool AcceptsTarget(string routeName, bool downstreamIsHttps, bool targetIsHttps, InternalRedirectState state)
    {
        if (AllowedRoutes is { } allowed && !allowed.Contains(routeName))
        {
            return false;
        }

        if (RequireSafeCrossScheme && !downstreamIsHttps && targetIsHttps)
        {
            return false;
        }

        if (RejectPreviousRoutes && state.Visited(routeName))
        {
            return false;
        }

        return true;
    }
}
