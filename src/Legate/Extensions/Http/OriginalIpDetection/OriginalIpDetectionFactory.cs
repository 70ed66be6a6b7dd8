using Envoy.Config.Core.V3;
using Envoy.Extensions.Http.OriginalIpDetection.CustomHeader.V3;
using Envoy.Extensions.Http.OriginalIpDetection.Xff.V3;
using Legate.Config;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Legate.Extensions.Http.OriginalIpDetection;

/// <summary>Compiles an HTTP connection manager's <c>original_ip_detection_extensions</c> (Envoy's rules and messages).</summary>
internal static class OriginalIpDetectionFactory
{
    /// <summary>The extensions in order; Envoy's default (one XFF extension with xff_num_trusted_hops) when there are none.</summary>
    public static OriginalIpDetection[] Compile(Hcm config, string path, ConfigErrors errors)
    {
        var extensions = config.OriginalIpDetectionExtensions;
        var trustedHops = (int)Math.Min(config.XffNumTrustedHops, int.MaxValue);
        if (extensions.Count == 0)
        {
            return [new XffOriginalIpDetection(trustedHops)];
        }

        var listPath = FieldPath.Field(path, "original_ip_detection_extensions");
        if (config.UseRemoteAddress == true)
        {
            errors.Add(listPath, "original IP detection extensions and use_remote_address may not be mixed (the extensions are used only when use_remote_address is off)");
        }

        if (trustedHops > 0)
        {
            errors.Add(listPath, "original IP detection extensions and xff_num_trusted_hops may not be mixed (set xff_num_trusted_hops in the envoy.http.original_ip_detection.xff extension instead)");
        }

        var compiled = new List<OriginalIpDetection>(extensions.Count);
        for (var i = 0; i < extensions.Count; i++)
        {
            if (Compile(extensions[i], FieldPath.Index(listPath, i), errors) is { } extension)
            {
                compiled.Add(extension);
            }
        }

        return compiled.ToArray();
    }

    private static OriginalIpDetection? Compile(TypedExtensionConfig extension, string path, ConfigErrors errors)
    {
        var typed = extension.TypedConfig;
        if (typed is null)
        {
            errors.Add(FieldPath.Field(path, "typed_config"), "an original IP detection extension needs its typed_config");
            return null;
        }

        if (typed.Is(XffConfig.Descriptor))
        {
            var xff = typed.Unpack<XffConfig>();
            return new XffOriginalIpDetection((int)Math.Min(xff.XffNumTrustedHops, int.MaxValue));
        }

        if (typed.Is(CustomHeaderConfig.Descriptor))
        {
            var custom = typed.Unpack<CustomHeaderConfig>();
            return new CustomHeaderOriginalIpDetection(custom.HeaderName, custom.AllowExtensionToSetAddressAsTrusted,
                custom.RejectWithStatus is { } status ? (int)status.Code : null);
        }

        errors.Add(FieldPath.Field(path, "typed_config"), $"{typed.TypeUrl} is not an original IP detection extension Legate implements (envoy.http.original_ip_detection.xff, envoy.http.original_ip_detection.custom_header)");
        return null;
    }
}
