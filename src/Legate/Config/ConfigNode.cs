namespace Legate.Config;

/// <summary>
/// A parsed YAML or JSON value with the place it was written. YAML and JSON both end up in this
/// one small tree so that the proto converter has a single input shape and every error it finds
/// can name a line and column, which the YamlDotNet and System.Text.Json object models do not
/// give in a uniform way.
/// </summary>
internal abstract class ConfigNode
{
    protected ConfigNode(SourcePosition position) => Position = position;

    /// <summary>Where the value starts (1-based line and column).</summary>
    public SourcePosition Position { get; }

    /// <summary>"a mapping", "a sequence", "a scalar" or "null", for error messages.</summary>
    public abstract string KindName { get; }
}

/// <summary>A YAML mapping or JSON object. Keys are unique; merge keys (<c>&lt;&lt;</c>) are already applied.</summary>
internal sealed class ConfigMapping : ConfigNode
{
    public ConfigMapping(SourcePosition position, IReadOnlyList<ConfigEntry> entries)
        : base(position)
    {
        Entries = entries;
    }

    public IReadOnlyList<ConfigEntry> Entries { get; }

    public override string KindName => "a mapping";

    /// <summary>The entry with exactly this key, or null. Linear: mappings in configs are small.</summary>
    public ConfigEntry? Find(string key)
    {
        foreach (var entry in Entries)
        {
            if (string.Equals(entry.Key, key, StringComparison.Ordinal))
            {
                return entry;
            }
        }

        return null;
    }
}

/// <summary>One key of a mapping, where the key was written, and its value.</summary>
internal sealed record ConfigEntry(string Key, SourcePosition KeyPosition, ConfigNode Value);

/// <summary>A YAML sequence or JSON array.</summary>
internal sealed class ConfigSequence : ConfigNode
{
    public ConfigSequence(SourcePosition position, IReadOnlyList<ConfigNode> items)
        : base(position)
    {
        Items = items;
    }

    public IReadOnlyList<ConfigNode> Items { get; }

    public override string KindName => "a sequence";
}

/// <summary>
/// A scalar exactly as written. <see cref="IsQuoted"/> keeps YAML's distinction between a plain
/// <c>true</c> or <c>123</c> (typed by YAML as bool / number) and a quoted <c>"true"</c> (always a
/// string); it matters for <c>google.protobuf.Struct</c> values. JSON strings count as quoted,
/// JSON numbers, booleans and null as plain.
/// </summary>
internal sealed class ConfigScalar : ConfigNode
{
    public ConfigScalar(SourcePosition position, string text, bool isQuoted)
        : base(position)
    {
        Text = text;
        IsQuoted = isQuoted;
    }

    public string Text { get; }

    public bool IsQuoted { get; }

    /// <summary>YAML null (<c>~</c>, <c>null</c>, an empty value) or JSON <c>null</c>.</summary>
    public bool IsNull => !IsQuoted && Text is "" or "~" or "null" or "Null" or "NULL";

    public override string KindName => IsNull ? "null" : "a scalar";

    /// <summary>True when the scalar is a plain YAML 1.2 core-schema boolean (<c>true</c>, <c>False</c>, <c>TRUE</c>...).</summary>
    public bool TryGetPlainBool(out bool value)
    {
        value = false;
        if (IsQuoted)
        {
            return false;
        }

        switch (Text)
        {
            case "true" or "True" or "TRUE":
                value = true;
                return true;
            case "false" or "False" or "FALSE":
                return true;
            default:
                return false;
        }
    }
}
