using Legate.Config;

namespace Legate.Tests.Config;

public sealed class ConfigDocumentTests
{
    [Theory]
    [InlineData("/etc/envoy/envoy.json", ConfigFormat.Json)]
    [InlineData("envoy.JSON", ConfigFormat.Json)]
    [InlineData("envoy.yaml", ConfigFormat.Yaml)]
    [InlineData("envoy.yml", ConfigFormat.Yaml)]
    [InlineData("envoy.conf", ConfigFormat.Yaml)]
    internal void FormatOf_UsesTheExtension(string path, ConfigFormat expected) =>
        Assert.Equal(expected, ConfigDocument.FormatOf(path));

    [Fact]
    public void Yaml_KeepsPositionsAndQuoting()
    {
        var root = (ConfigMapping)ConfigDocument.Parse("a: 1\nb: 'x'\nc:\n  - true\n  - \"true\"\n", ConfigFormat.Yaml);

        Assert.Equal(["a", "b", "c"], root.Entries.Select(e => e.Key));
        var a = (ConfigScalar)root.Entries[0].Value;
        Assert.Equal(("1", false, new SourcePosition(1, 4)), (a.Text, a.IsQuoted, a.Position));
        var b = (ConfigScalar)root.Entries[1].Value;
        Assert.Equal(("x", true), (b.Text, b.IsQuoted));
        Assert.Equal(new SourcePosition(3, 1), root.Entries[2].KeyPosition);
        var list = (ConfigSequence)root.Entries[2].Value;
        Assert.Equal(new SourcePosition(4, 5), list.Items[0].Position);
        Assert.False(((ConfigScalar)list.Items[0]).IsQuoted);
        Assert.True(((ConfigScalar)list.Items[1]).IsQuoted);
    }

    [Fact]
    public void Yaml_NullFormsAreNullButQuotedNullIsAString()
    {
        var root = (ConfigMapping)ConfigDocument.Parse("a: ~\nb:\nc: null\nd: 'null'\ne: !!str null\n", ConfigFormat.Yaml);

        Assert.Equal([true, true, true, false, false], root.Entries.Select(e => ((ConfigScalar)e.Value).IsNull));
    }

    [Fact]
    public void Yaml_MergeKeyLetsTheMappingOverrideMergedKeys()
    {
        const string yaml = """
            defaults: &defaults
              connect_timeout: 1s
              type: STATIC
            cluster:
              <<: *defaults
              connect_timeout: 5s
              name: a
            """;

        var root = (ConfigMapping)ConfigDocument.Parse(yaml, ConfigFormat.Yaml);
        var cluster = (ConfigMapping)root.Find("cluster")!.Value;

        // Merged keys take the place of "<<"; the local connect_timeout replaces the merged one.
        Assert.Equal(["type", "connect_timeout", "name"], cluster.Entries.Select(e => e.Key));
        Assert.Equal("5s", ((ConfigScalar)cluster.Find("connect_timeout")!.Value).Text);
        Assert.Equal("STATIC", ((ConfigScalar)cluster.Find("type")!.Value).Text);
    }

    [Fact]
    public void Yaml_MergeOfSeveralMappingsPrefersTheFirst()
    {
        var root = (ConfigMapping)ConfigDocument.Parse("x:\n  <<: [{a: 1}, {a: 2, c: 3}]\n  d: 4\n", ConfigFormat.Yaml);
        var x = (ConfigMapping)root.Find("x")!.Value;

        Assert.Equal(["a", "c", "d"], x.Entries.Select(e => e.Key));
        Assert.Equal("1", ((ConfigScalar)x.Find("a")!.Value).Text);
    }

    [Fact]
    public void Yaml_AliasReusesTheAnchoredNodeAndIgnoreTaggedKeysAreDropped()
    {
        var root = (ConfigMapping)ConfigDocument.Parse("!ignore shared: &addr {port: 80}\nfirst: *addr\n", ConfigFormat.Yaml);

        var entry = Assert.Single(root.Entries);
        Assert.Equal("first", entry.Key);
        Assert.Equal(new SourcePosition(1, 17), entry.Value.Position);
        Assert.Equal("80", ((ConfigScalar)((ConfigMapping)entry.Value).Find("port")!.Value).Text);
    }

    [Fact]
    public void Yaml_EmptyDocumentIsNull()
    {
        var root = ConfigDocument.Parse("# nothing here\n", ConfigFormat.Yaml);

        Assert.True(((ConfigScalar)root).IsNull);
    }

    [Theory]
    [InlineData("a: 1\n- b\n", "(root) (line 2, col 1): invalid YAML: While parsing a block mapping, did not find expected key.")]
    [InlineData("a: 1\n---\nb: 2\n", "(root) (line 2, col 1): multiple YAML documents in one file are not supported")]
    [InlineData("a: 1\na: 2\n", "(root) (line 2, col 1): invalid YAML: duplicate key \"a\"")]
    [InlineData("a: *nowhere\n", "(root) (line 1, col 4): invalid YAML: unknown anchor \"nowhere\" (an alias must follow its anchor)")]
    [InlineData("a: &x [*x]\n", "(root) (line 1, col 8): invalid YAML: unknown anchor \"x\" (an alias must follow its anchor)")]
    [InlineData("a:\n  b: [1, 2\nc: 3\n", "(root) (line 2, col 6): invalid YAML: \"[\" is never closed by \"]\"")]
    [InlineData("a:\n  b:\n\t- 1\n", "(root) (line 3, col 1): invalid YAML: While scanning a mapping, found invalid tab as indentation.")]
    [InlineData("x:\n  <<: 5\n", "(root) (line 2, col 7): invalid YAML: merge key \"<<\" needs a mapping or a sequence of mappings")]
    public void Yaml_SyntaxErrorsNameLineAndColumn(string yaml, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigDocument.Parse(yaml, ConfigFormat.Yaml));

        Assert.Equal(expected, Assert.Single(e.Errors).ToString());
    }

    [Fact]
    public void Json_PositionsAreLineAndCharacterColumns()
    {
        const string json = "{\n  \"name\": \"é\",\n  \"port\": 8080,\n  \"tags\": [\"a\", null, false]\n}";

        var root = (ConfigMapping)ConfigDocument.Parse(json, ConfigFormat.Json);

        Assert.Equal(new SourcePosition(2, 3), root.Entries[0].KeyPosition);
        var port = (ConfigScalar)root.Find("port")!.Value;
        Assert.Equal(("8080", false, new SourcePosition(3, 11)), (port.Text, port.IsQuoted, port.Position));
        var tags = (ConfigSequence)root.Find("tags")!.Value;
        Assert.Equal([true, false, false], tags.Items.Select(i => ((ConfigScalar)i).IsQuoted));
        Assert.True(((ConfigScalar)tags.Items[1]).IsNull);
        Assert.Equal(new SourcePosition(4, 23), tags.Items[2].Position);
    }

    [Fact]
    public void Json_ColumnsCountCharactersNotBytes()
    {
        var root = (ConfigMapping)ConfigDocument.Parse("{\"é€\": 1, \"b\": 2}", ConfigFormat.Json);

        Assert.Equal(new SourcePosition(1, 11), root.Entries[1].KeyPosition);
    }

    [Fact]
    public void Json_PositionsStayExactOnALongSingleLine()
    {
        // A DiscoveryResponse file is often one line of thousands of resources: positions are
        // counted on from the previous token, and must still match a count from the line start.
        var text = new System.Text.StringBuilder("{\"items\": [");
        for (var i = 0; i < 2_000; i++)
        {
            text.Append(i == 0 ? "" : ", ").Append("{\"k\u00e9\": \"v€").Append(i).Append("\"}");
        }

        var json = text.Append("],\n \"tail\": 1}").ToString();
        var root = (ConfigMapping)ConfigDocument.Parse(json, ConfigFormat.Json);

        var items = (ConfigSequence)root.Find("items")!.Value;
        Assert.Equal(2_000, items.Items.Count);
        foreach (var index in new[] { 0, 1, 999, 1_999 })
        {
            var value = ((ConfigMapping)items.Items[index]).Entries[0].Value;
            var at = json.IndexOf("\"v€" + index + "\"", StringComparison.Ordinal);
            Assert.Equal(new SourcePosition(1, at + 1), value.Position);
        }

        Assert.Equal(new SourcePosition(2, 2), root.Entries[1].KeyPosition);
    }

    [Theory]
    [InlineData("{\n  \"a\": 1,\n  \"b\" 2\n}", "(root) (line 3, col 7): invalid JSON: '2' is invalid after a property name. Expected a ':'.")]
    [InlineData("{\"a\": 1,}", "(root) (line 1, col 9): invalid JSON: The JSON object contains a trailing comma at the end which is not supported in this mode.")]
    [InlineData("{\"a\": 1, \"a\": 2}", "(root) (line 1, col 10): invalid JSON: duplicate key \"a\"")]
    [InlineData("{\"a\": 1}\n{}", "(root) (line 2, col 1): invalid JSON: '{' is invalid after a single JSON value. Expected end of data.")]
    public void Json_SyntaxErrorsNameLineAndColumn(string json, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigDocument.Parse(json, ConfigFormat.Json));

        Assert.Equal(expected, Assert.Single(e.Errors).ToString());
    }
}
