using System.Text.RegularExpressions;
using Envoy.Config.Metrics.V3;
using Legate.Config;
using Legate.Router.Matching;

namespace Legate.Stats;

/// <summary>
/// The compiled <c>stats_config</c>: tag extraction (<c>use_all_default_tags</c> and custom
/// <c>stats_tags</c>), which names are kept (<c>stats_matcher</c>) and histogram buckets
/// (<c>histogram_bucket_settings</c>). Everything is decided when a stat is created, once per
/// name, never when it is updated.
/// </summary>
internal sealed class StatsOptions
{
    public static StatsOptions Default { get; } = new();

    public bool UseAllDefaultTags { get; init; } = true;

    /// <summary>Custom regex tags: (tag name, regex); an empty regex means Envoy's default regex for that tag name.</summary>
    public IReadOnlyList<(string Tag, Regex? Regex)> RegexTags { get; init; } = [];

    /// <summary>Custom fixed-value tags added to every stat.</summary>
    public IReadOnlyList<StatTag> FixedTags { get; init; } = [];

    /// <summary>Whether a stat of this full name is kept; null keeps all.</summary>
    public Func<string, bool>? Accepts { get; init; }

    public IReadOnlyList<(CompiledStringMatcher Match, double[] Buckets)> BucketSettings { get; init; } = [];

    /// <summary>The buckets for <paramref name="name"/>: the first matching setting, else Envoy's defaults.</summary>
    public double[] BucketsFor(string name)
    {
        foreach (var (match, buckets) in BucketSettings)
        {
            if (match.Match(name))
            {
                return buckets;
            }
        }

        return Histogram.DefaultBuckets;
    }

    public static StatsOptions Compile(StatsConfig? config, ConfigErrors errors)
    {
        if (config is null)
        {
            return Default;
        }

        const string path = "stats_config";
        var regexTags = new List<(string, Regex?)>();
        var fixedTags = new List<StatTag>();
        for (var i = 0; i < config.StatsTags.Count; i++)
        {
            var tag = config.StatsTags[i];
            var tagPath = FieldPath.Index(FieldPath.Field(path, "stats_tags"), i);
            switch (tag.TagValueCase)
            {
                case Envoy.Config.Metrics.V3.TagSpecifier.TagValueOneofCase.FixedValue:
                    fixedTags.Add(new StatTag(tag.TagName, tag.FixedValue));
                    break;
                case Envoy.Config.Metrics.V3.TagSpecifier.TagValueOneofCase.Regex when tag.Regex.Length > 0:
                    try
                    {
                        var regex = new Regex(tag.Regex, RegexOptions.CultureInvariant | RegexOptions.NonBacktracking);
                        if (regex.GetGroupNumbers().Length < 2)
                        {
                            errors.Add(FieldPath.Field(tagPath, "regex"), "the regex needs a capture group (the part cut from the name); a second one is the tag's value");
                            continue;
                        }

                        regexTags.Add((tag.TagName, regex));
                    }
                    catch (Exception ex) when (ex is ArgumentException or NotSupportedException)
                    {
                        errors.Add(FieldPath.Field(tagPath, "regex"), $"invalid regex: {ex.Message}");
                    }

                    break;
                default:
                    if (!TagExtractors.IsDefaultTag(tag.TagName))
                    {
                        errors.Add(tagPath, $"tag '{tag.TagName}' has no regex or fixed_value and is not one of Envoy's default tags");
                        continue;
                    }

                    regexTags.Add((tag.TagName, null));
                    break;
            }
        }

        Func<string, bool>? accepts = null;
        if (config.StatsMatcher is { } matcher)
        {
            var matcherPath = FieldPath.Field(path, "stats_matcher");
            switch (matcher.StatsMatcherCase)
            {
                case StatsMatcher.StatsMatcherOneofCase.RejectAll:
                    var rejectAll = matcher.RejectAll;
                    accepts = _ => !rejectAll;
                    break;
                case StatsMatcher.StatsMatcherOneofCase.InclusionList:
                    var include = CompileList(matcher.InclusionList, FieldPath.Field(matcherPath, "inclusion_list"), errors);
                    accepts = name => include.Exists(m => m.Match(name));
                    break;
                case StatsMatcher.StatsMatcherOneofCase.ExclusionList:
                    var exclude = CompileList(matcher.ExclusionList, FieldPath.Field(matcherPath, "exclusion_list"), errors);
                    accepts = name => !exclude.Exists(m => m.Match(name));
                    break;
            }
        }

        var buckets = new List<(CompiledStringMatcher, double[])>();
        for (var i = 0; i < config.HistogramBucketSettings.Count; i++)
        {
            var setting = config.HistogramBucketSettings[i];
            var settingPath = FieldPath.Index(FieldPath.Field(path, "histogram_bucket_settings"), i);
            var match = CompiledStringMatcher.Create(setting.Match, errors, FieldPath.Field(settingPath, "match"));
            var bounds = setting.Buckets.Distinct().Order().ToArray();
            if (bounds.Length != setting.Buckets.Count)
            {
                errors.Add(FieldPath.Field(settingPath, "buckets"), "buckets must be unique");
            }

            if (match is not null)
            {
                buckets.Add((match, bounds));
            }
        }

        return new StatsOptions
        {
            UseAllDefaultTags = config.UseAllDefaultTags ?? true,
            RegexTags = regexTags,
            FixedTags = fixedTags,
            Accepts = accepts,
            BucketSettings = buckets,
        };
    }

    private static List<CompiledStringMatcher> CompileList(Envoy.Type.Matcher.V3.ListStringMatcher list, string path, ConfigErrors errors)
    {
        var matchers = new List<CompiledStringMatcher>();
        for (var i = 0; i < list.Patterns.Count; i++)
        {
            if (CompiledStringMatcher.Create(list.Patterns[i], errors, FieldPath.Index(FieldPath.Field(path, "patterns"), i)) is { } matcher)
            {
                matchers.Add(matcher);
            }
        }

        return matchers;
    }
}
