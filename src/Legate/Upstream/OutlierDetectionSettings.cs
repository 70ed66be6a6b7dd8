using OutlierDetectionConfig = Envoy.Config.Cluster.V3.OutlierDetection;

namespace Legate.Upstream;

/// <summary>A cluster's <c>outlier_detection</c> with Envoy's defaults filled in.</summary>
internal sealed record OutlierDetectionSettings
{
    public int Consecutive5xx { get; init; } = 5;

    public int ConsecutiveGatewayFailure { get; init; } = 5;

    public int ConsecutiveLocalOriginFailure { get; init; } = 5;

    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan BaseEjectionTime { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Default 300 s, or the base ejection time when that is larger.</summary>
    public TimeSpan MaxEjectionTime { get; init; } = TimeSpan.FromSeconds(300);

    public TimeSpan MaxEjectionTimeJitter { get; init; }

    public int MaxEjectionPercent { get; init; } = 10;

    public bool AlwaysEjectOneHost { get; init; }

    public int EnforcingConsecutive5xx { get; init; } = 100;

    public int EnforcingConsecutiveGatewayFailure { get; init; }

    public int EnforcingConsecutiveLocalOriginFailure { get; init; } = 100;

    public int EnforcingSuccessRate { get; init; } = 100;

    public int EnforcingLocalOriginSuccessRate { get; init; } = 100;

    public int EnforcingFailurePercentage { get; init; }

    public int EnforcingFailurePercentageLocalOrigin { get; init; }

    public int SuccessRateMinimumHosts { get; init; } = 5;

    public int SuccessRateRequestVolume { get; init; } = 100;

    /// <summary>Divided by 1000: 1900 = 1.9 standard deviations.</summary>
    public int SuccessRateStdevFactor { get; init; } = 1900;

    public int FailurePercentageThreshold { get; init; } = 85;

    public int FailurePercentageMinimumHosts { get; init; } = 5;

    public int FailurePercentageRequestVolume { get; init; } = 50;

    public bool SplitExternalLocalOriginErrors { get; init; }

    /// <summary>Envoy defaults it to true.</summary>
    public bool SuccessfulActiveHealthCheckUnejectHost { get; init; } = true;

    public static OutlierDetectionSettings From(OutlierDetectionConfig config)
    {
        var baseTime = config.BaseEjectionTime?.ToTimeSpan() ?? TimeSpan.FromSeconds(30);
        var maxTime = config.MaxEjectionTime?.ToTimeSpan() ?? TimeSpan.FromSeconds(300);
        return new OutlierDetectionSettings
        {
            Consecutive5xx = (int)(config.Consecutive5Xx ?? 5),
            ConsecutiveGatewayFailure = (int)(config.ConsecutiveGatewayFailure ?? 5),
            ConsecutiveLocalOriginFailure = (int)(config.ConsecutiveLocalOriginFailure ?? 5),
            Interval = config.Interval?.ToTimeSpan() ?? TimeSpan.FromSeconds(10),
            BaseEjectionTime = baseTime,
            MaxEjectionTime = maxTime < baseTime ? baseTime : maxTime,
            MaxEjectionTimeJitter = config.MaxEjectionTimeJitter?.ToTimeSpan() ?? TimeSpan.Zero,
            MaxEjectionPercent = (int)Math.Min(100, config.MaxEjectionPercent ?? 10),
            AlwaysEjectOneHost = config.AlwaysEjectOneHost ?? false,
            EnforcingConsecutive5xx = (int)(config.EnforcingConsecutive5Xx ?? 100),
            EnforcingConsecutiveGatewayFailure = (int)(config.EnforcingConsecutiveGatewayFailure ?? 0),
            EnforcingConsecutiveLocalOriginFailure = (int)(config.EnforcingConsecutiveLocalOriginFailure ?? 100),
            EnforcingSuccessRate = (int)(config.EnforcingSuccessRate ?? 100),
            EnforcingLocalOriginSuccessRate = (int)(config.EnforcingLocalOriginSuccessRate ?? 100),
            EnforcingFailurePercentage = (int)(config.EnforcingFailurePercentage ?? 0),
            EnforcingFailurePercentageLocalOrigin = (int)(config.EnforcingFailurePercentageLocalOrigin ?? 0),
            SuccessRateMinimumHosts = (int)(config.SuccessRateMinimumHosts ?? 5),
            SuccessRateRequestVolume = (int)(config.SuccessRateRequestVolume ?? 100),
            SuccessRateStdevFactor = (int)(config.SuccessRateStdevFactor ?? 1900),
            FailurePercentageThreshold = (int)(config.FailurePercentageThreshold ?? 85),
            FailurePercentageMinimumHosts = (int)(config.FailurePercentageMinimumHosts ?? 5),
            FailurePercentageRequestVolume = (int)(config.FailurePercentageRequestVolume ?? 50),
            SplitExternalLocalOriginErrors = config.SplitExternalLocalOriginErrors,
            SuccessfulActiveHealthCheckUnejectHost = config.SuccessfulActiveHealthCheckUnejectHost ?? true,
        };
    }
}
