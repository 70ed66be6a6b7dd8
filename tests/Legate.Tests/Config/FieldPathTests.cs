using Legate.Config;

namespace Legate.Tests.Config;

public sealed class FieldPathTests
{
    [Theory]
    [InlineData("a.b.c", "a.b")]
    [InlineData("a[3]", "a")]
    [InlineData("a[3].b", "a[3]")]
    [InlineData("m[\"x.y]\"]", "m")]
    [InlineData("m[\"k\"].z", "m[\"k\"]")]
    [InlineData("a", "")]
    public void Parent_of_a_path(string path, string parent)
    {
        Assert.Equal(parent, path[..FieldPath.ParentLength(path)]);
    }

    [Fact]
    public void Root_has_no_parent() => Assert.Equal(-1, FieldPath.ParentLength(""));

    [Fact]
    public void Source_map_falls_back_to_the_nearest_written_ancestor()
    {
        var map = new SourceMap();
        map.Record("static_resources.clusters[1]", new SourcePosition(40, 5));

        Assert.Equal(new SourcePosition(40, 5), map.Find("static_resources.clusters[1].connect_timeout"));
        Assert.Null(map.Find("admin.address"));
    }

    [Fact]
    public void Errors_print_path_position_and_message()
    {
        var error = new ConfigError("static_resources.clusters[1].connect_timeout", "invalid duration \"5\"", new SourcePosition(42, 24));

        Assert.Equal("static_resources.clusters[1].connect_timeout (line 42, col 24): invalid duration \"5\"", error.ToString());
    }
}
