using System.Text;
using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Legate.Config;

internal enum ConfigFormat
{
    Yaml,
    Json,
}

/// <summary>
/// Parses configuration text (YAML or JSON) into a <see cref="ConfigNode"/> tree with positions.
/// Syntax errors throw a <see cref="ConfigException"/> naming the line and column.
/// </summary>
internal static class ConfigDocument
{
    /// <summary>Deeper documents are rejected: real configs nest ~30 levels, and recursion must stay bounded.</summary>
    internal const int MaxDepth = 256;

    public static ConfigFormat FormatOf(string path) =>
        Path.GetExtension(path).Equals(".json", StringComparison.OrdinalIgnoreCase) ? ConfigFormat.Json : ConfigFormat.Yaml;

    public static ConfigNode Parse(string text, ConfigFormat format)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length > 0 && text[0] == '\uFEFF')
        {
            text = text[1..];
        }

        return format == ConfigFormat.Json ? new JsonBuilder(text).Build() : new YamlBuilder(text).Build();
    }

    internal static ConfigException SyntaxError(string message, SourcePosition position) =>
        new(new[] { new ConfigError("", message, position) });

    /// <summary>
    /// Builds the tree from YamlDotNet's event stream rather than its <c>YamlStream</c> model:
    /// <c>YamlStream</c> with a <c>MergingParser</c> throws "Duplicate key" as soon as a mapping
    /// overrides a merged key (the main reason to use <c>&lt;&lt;</c>), rejects inline merge maps and
    /// lets a self-referencing alias build a cyclic graph. Here aliases resolve to nodes already
    /// built (so cycles are impossible) and merge keys follow the YAML merge-key spec.
    /// </summary>
    private sealed class YamlBuilder
    {
        private const string MergeKey = "<<";
        private const string StrTag = "tag:yaml.org,2002:str";

        // Envoy drops mapping keys tagged !ignore: they hold anchors meant only for aliasing elsewhere.
        private const string IgnoreTag = "!ignore";

        private readonly string _text;
        private readonly Parser _parser;
        private readonly Dictionary<string, ConfigNode> _anchors = new(StringComparer.Ordinal);
        private readonly Stack<(SourcePosition Position, bool IsSequence)> _openFlows = new();
        private SourcePosition _last = new(1, 1);

        public YamlBuilder(string text)
        {
            _text = text;
            _parser = new Parser(new StringReader(text));
        }

        public ConfigNode Build()
        {
            try
            {
                Next<StreamStart>();
                if (Peek() is StreamEnd)
                {
                    return new ConfigScalar(new SourcePosition(1, 1), "", isQuoted: false);
                }

                Next<DocumentStart>();
                var root = ReadNode(0);
                Next<DocumentEnd>();
                if (Peek() is DocumentStart second)
                {
                    throw SyntaxError("multiple YAML documents in one file are not supported", PositionOf(second.Start));
                }

                Next<StreamEnd>();
                return root;
            }
            catch (YamlException e)
            {
                throw SyntaxError("invalid YAML: " + e.Message, PositionOfError(e));
            }
            catch (InvalidOperationException)
            {
                // YamlDotNet's scanner fails this way (not with a YamlException) on an unclosed flow
                // collection such as "[1, 2" followed by block content.
                if (_openFlows.Count > 0)
                {
                    var (position, isSequence) = _openFlows.Peek();
                    throw SyntaxError(isSequence ? "invalid YAML: \"[\" is never closed by \"]\"" : "invalid YAML: \"{\" is never closed by \"}\"", position);
                }

                throw SyntaxError("invalid YAML: unexpected content after this point", _last);
            }
        }

        private ParsingEvent Peek()
        {
            var current = _parser.Current;
            if (current is null)
            {
                _parser.MoveNext();
                current = _parser.Current;
            }

            return current ?? throw SyntaxError("invalid YAML: unexpected end of input", _last);
        }

        private T Next<T>()
            where T : ParsingEvent
        {
            var current = Peek();
            if (current is not T wanted)
            {
                throw SyntaxError($"invalid YAML: unexpected {current.GetType().Name}", PositionOf(current.Start));
            }

            _last = PositionOf(current.Start);
            _parser.MoveNext();
            return wanted;
        }

        private ConfigNode ReadNode(int depth)
        {
            var ev = Peek();
            var position = PositionOf(ev.Start);
            if (depth > MaxDepth)
            {
                throw SyntaxError($"invalid YAML: nested deeper than {MaxDepth} levels", position);
            }

            switch (ev)
            {
                case AnchorAlias alias:
                    Next<AnchorAlias>();
                    return _anchors.TryGetValue(alias.Value.Value, out var target)
                        ? target
                        : throw SyntaxError($"invalid YAML: unknown anchor \"{alias.Value.Value}\" (an alias must follow its anchor)", position);

                case Scalar scalar:
                    Next<Scalar>();
                    return Anchor(scalar.Anchor, new ConfigScalar(position, scalar.Value, IsQuoted(scalar)));

                case SequenceStart start:
                    {
                        Next<SequenceStart>();
                        TrackFlow(start.Style == SequenceStyle.Flow, position, isSequence: true);
                        var items = new List<ConfigNode>();
                        while (Peek() is not SequenceEnd)
                        {
                            items.Add(ReadNode(depth + 1));
                        }

                        Next<SequenceEnd>();
                        UntrackFlow(start.Style == SequenceStyle.Flow);
                        return Anchor(start.Anchor, new ConfigSequence(position, items));
                    }

                case MappingStart start:
                    {
                        Next<MappingStart>();
                        TrackFlow(start.Style == MappingStyle.Flow, position, isSequence: false);
                        var mapping = ReadMapping(position, depth);
                        UntrackFlow(start.Style == MappingStyle.Flow);
                        return Anchor(start.Anchor, mapping);
                    }

                default:
                    throw SyntaxError($"invalid YAML: unexpected {ev.GetType().Name}", position);
            }
        }

        private ConfigMapping ReadMapping(SourcePosition position, int depth)
        {
            var explicitEntries = new List<ConfigEntry>();
            var keys = new HashSet<string>(StringComparer.Ordinal);

            // Entries in document order; a null entry marks where the merge sources were written.
            var order = new List<ConfigEntry?>();
            List<ConfigMapping>? mergeSources = null;
            while (Peek() is not MappingEnd)
            {
                var keyEvent = Peek();
                var keyPosition = PositionOf(keyEvent.Start);
                if (keyEvent is not Scalar keyScalar)
                {
                    // An alias used as a key is legal YAML; anything else (a mapping or sequence key) is not config.
                    var keyNode = ReadNode(depth + 1);
                    if (keyNode is not ConfigScalar aliasKey)
                    {
                        throw SyntaxError("invalid YAML: mapping keys must be scalars", keyPosition);
                    }

                    AddExplicit(aliasKey.Text, keyPosition, ReadNode(depth + 1), ignored: false);
                    continue;
                }

                Next<Scalar>();
                var keyText = keyScalar.Value;
                if (!keyScalar.Anchor.IsEmpty)
                {
                    _anchors[keyScalar.Anchor.Value] = new ConfigScalar(keyPosition, keyText, IsQuoted(keyScalar));
                }

                if (keyText == MergeKey && keyScalar.Style == ScalarStyle.Plain && keyScalar.Tag.IsEmpty)
                {
                    var valuePosition = PositionOf(Peek().Start);
                    mergeSources ??= new List<ConfigMapping>();
                    if (mergeSources.Count == 0)
                    {
                        order.Add(null);
                    }

                    AddMergeSources(ReadNode(depth + 1), valuePosition, mergeSources);
                    continue;
                }

                var ignored = !keyScalar.Tag.IsEmpty && keyScalar.Tag.Value == IgnoreTag;
                AddExplicit(keyText, keyPosition, ReadNode(depth + 1), ignored);
            }

            Next<MappingEnd>();
            if (mergeSources is null)
            {
                return new ConfigMapping(position, explicitEntries);
            }

            // YAML merge-key semantics: keys written in this mapping win over merged ones, and among
            // several merged mappings the earlier one wins.
            var entries = new List<ConfigEntry>(explicitEntries.Count + 8);
            foreach (var entry in order)
            {
                if (entry is not null)
                {
                    entries.Add(entry);
                    continue;
                }

                foreach (var source in mergeSources)
                {
                    foreach (var merged in source.Entries)
                    {
                        if (keys.Add(merged.Key))
                        {
                            entries.Add(merged);
                        }
                    }
                }
            }

            return new ConfigMapping(position, entries);

            void AddExplicit(string key, SourcePosition keyPosition, ConfigNode value, bool ignored)
            {
                if (!keys.Add(key))
                {
                    throw SyntaxError($"invalid YAML: duplicate key \"{key}\"", keyPosition);
                }

                if (!ignored)
                {
                    var entry = new ConfigEntry(key, keyPosition, value);
                    explicitEntries.Add(entry);
                    order.Add(entry);
                }
            }
        }

        private static void AddMergeSources(ConfigNode value, SourcePosition position, List<ConfigMapping> sources)
        {
            switch (value)
            {
                case ConfigMapping mapping:
                    sources.Add(mapping);
                    return;
                case ConfigSequence sequence:
                    foreach (var item in sequence.Items)
                    {
                        if (item is not ConfigMapping itemMapping)
                        {
                            throw SyntaxError("invalid YAML: merge key \"<<\" needs a mapping or a sequence of mappings", item.Position);
                        }

                        sources.Add(itemMapping);
                    }

                    return;
                default:
                    throw SyntaxError("invalid YAML: merge key \"<<\" needs a mapping or a sequence of mappings", position);
            }
        }

        private ConfigNode Anchor(AnchorName anchor, ConfigNode node)
        {
            // Registered once the node is complete, so an alias inside its own anchor is "unknown":
            // config trees must stay acyclic. Redefining an anchor is legal; the latest one wins.
            if (!anchor.IsEmpty)
            {
                _anchors[anchor.Value] = node;
            }

            return node;
        }

        private void TrackFlow(bool isFlow, SourcePosition position, bool isSequence)
        {
            if (isFlow)
            {
                _openFlows.Push((position, isSequence));
            }
        }

        private void UntrackFlow(bool isFlow)
        {
            if (isFlow)
            {
                _openFlows.Pop();
            }
        }

        // A quoted or block scalar, or one tagged !!str or "!", is a string whatever it looks like.
        private static bool IsQuoted(Scalar scalar) =>
            scalar.Style != ScalarStyle.Plain || (!scalar.Tag.IsEmpty && (scalar.Tag.IsNonSpecific || scalar.Tag.Value == StrTag));

        private SourcePosition PositionOfError(YamlException e)
        {
            // YamlDotNet reports a tab in indentation at the start of the enclosing mapping; point at the tab.
            if (e.Message.Contains("tab", StringComparison.Ordinal))
            {
                var line = 1;
                var lineStartIndex = 0;
                var inIndent = true;
                for (var i = 0; i < _text.Length; i++)
                {
                    var c = _text[i];
                    if (c == '\n')
                    {
                        line++;
                        lineStartIndex = i + 1;
                        inIndent = true;
                    }
                    else if (c == '\t' && inIndent)
                    {
                        return new SourcePosition(line, i - lineStartIndex + 1);
                    }
                    else if (c != ' ')
                    {
                        inIndent = false;
                    }
                }
            }

            return PositionOf(e.Start);
        }

        private static SourcePosition PositionOf(Mark mark) => new((int)mark.Line, (int)mark.Column);
    }

    /// <summary>Builds the tree with <see cref="Utf8JsonReader"/>, turning byte offsets into line and column.</summary>
    private sealed class JsonBuilder
    {
        private readonly byte[] _utf8;
        private readonly List<int> _lineStarts = new() { 0 };
        private int _lastLine = -1;
        private int _lastOffset;
        private int _lastColumn;

        public JsonBuilder(string text)
        {
            _utf8 = Encoding.UTF8.GetBytes(text);
            for (var i = 0; i < _utf8.Length; i++)
            {
                if (_utf8[i] == (byte)'\n')
                {
                    _lineStarts.Add(i + 1);
                }
            }
        }

        public ConfigNode Build()
        {
            var reader = new Utf8JsonReader(_utf8, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, MaxDepth = MaxDepth });
            try
            {
                if (!reader.Read())
                {
                    return new ConfigScalar(new SourcePosition(1, 1), "", isQuoted: false);
                }

                var root = ReadValue(ref reader);

                // Anything but whitespace or comments after the root value makes the reader throw here.
                reader.Read();
                return root;
            }
            catch (JsonException e)
            {
                var message = e.Message;
                var cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
                if (cut >= 0)
                {
                    message = message[..cut];
                }

                message = message.Replace(" Change the reader options.", "", StringComparison.Ordinal);
                var line = (int)(e.LineNumber ?? 0);
                var offset = line < _lineStarts.Count ? _lineStarts[line] + (int)(e.BytePositionInLine ?? 0) : _utf8.Length;
                throw SyntaxError("invalid JSON: " + message, PositionAt(offset));
            }
        }

        private ConfigNode ReadValue(ref Utf8JsonReader reader)
        {
            var position = PositionAt(reader.TokenStartIndex);
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                    {
                        var entries = new List<ConfigEntry>();
                        HashSet<string>? keys = null;
                        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                        {
                            var key = reader.GetString()!;
                            var keyPosition = PositionAt(reader.TokenStartIndex);
                            keys ??= new HashSet<string>(StringComparer.Ordinal);
                            if (!keys.Add(key))
                            {
                                throw SyntaxError($"invalid JSON: duplicate key \"{key}\"", keyPosition);
                            }

                            reader.Read();
                            entries.Add(new ConfigEntry(key, keyPosition, ReadValue(ref reader)));
                        }

                        return new ConfigMapping(position, entries);
                    }

                case JsonTokenType.StartArray:
                    {
                        var items = new List<ConfigNode>();
                        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                        {
                            items.Add(ReadValue(ref reader));
                        }

                        return new ConfigSequence(position, items);
                    }

                case JsonTokenType.String:
                    return new ConfigScalar(position, reader.GetString()!, isQuoted: true);
                case JsonTokenType.Number:
                    return new ConfigScalar(position, Encoding.UTF8.GetString(reader.ValueSpan), isQuoted: false);
                case JsonTokenType.True:
                    return new ConfigScalar(position, "true", isQuoted: false);
                case JsonTokenType.False:
                    return new ConfigScalar(position, "false", isQuoted: false);
                case JsonTokenType.Null:
                    return new ConfigScalar(position, "null", isQuoted: false);
                default:
                    throw SyntaxError($"invalid JSON: unexpected {reader.TokenType}", position);
            }
        }

        /// <summary>1-based line and column (in characters, not bytes) of a byte offset.</summary>
        private SourcePosition PositionAt(long byteOffset)
        {
            var offset = (int)Math.Min(byteOffset, _utf8.Length);
            var index = _lineStarts.BinarySearch(offset);
            var line = index >= 0 ? index : ~index - 1;

            // Tokens come in increasing order: count on from the previous token when it is on the
            // same line. Counting from the line start each time is quadratic on a one-line JSON
            // document (a DiscoveryResponse of thousands of endpoints took tens of seconds).
            int from, column;
            if (line == _lastLine && offset >= _lastOffset)
            {
                from = _lastOffset;
                column = _lastColumn;
            }
            else
            {
                from = _lineStarts[line];
                column = 1;
            }

            for (var i = from; i < offset; i++)
            {
                // Count only the first byte of each UTF-8 sequence.
                if ((_utf8[i] & 0xC0) != 0x80)
                {
                    column++;
                }
            }

            _lastLine = line;
            _lastOffset = offset;
            _lastColumn = column;
            return new SourcePosition(line + 1, column);
        }
    }
}
