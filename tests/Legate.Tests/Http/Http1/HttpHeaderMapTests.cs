using Legate.Http.Http1;

namespace Legate.Tests.Http.Http1;

public sealed class HttpHeaderMapTests
{
    [Fact]
    public void KeepsOrderAndDuplicates()
    {
        var map = new HttpHeaderMap();
        map.Add("Accept", "a");
        map.Add("X-One", "1");
        map.Add("accept", "b");

        Assert.Equal("accept: a\nx-one: 1\naccept: b\n", Http1Feeder.Fields(map));
        Assert.Equal(2, map.CountOf(KnownHeader.Accept));
        Assert.Equal(2, map.IndexOf(KnownHeader.Accept, 1));
    }

    [Fact]
    public void SetReplacesTheFirstInPlaceAndRemovesTheRest()
    {
        var map = new HttpHeaderMap();
        map.Add("x-a", "1");
        map.Add("Host", "one");
        map.Add("x-b", "2");
        map.Add("host", "two");
        map.Set(KnownHeader.Host, "three");
        map.Add("X-Custom", "1");
        map.Add("x-custom", "2");
        map.Set("X-CUSTOM", "3");

        Assert.Equal("x-a: 1\nhost: three\nx-b: 2\nx-custom: 3\n", Http1Feeder.Fields(map));
    }

    [Fact]
    public void RemoveUpdatesPresence()
    {
        var map = new HttpHeaderMap();
        map.Add("Content-Length", "1");
        map.Add("Content-Length", "2");
        map.Add("x-y", "z");

        Assert.True(map.Contains(KnownHeader.ContentLength));
        map.RemoveAt(0);
        Assert.True(map.Contains(KnownHeader.ContentLength));
        Assert.Equal(1, map.Remove(KnownHeader.ContentLength));
        Assert.False(map.Contains(KnownHeader.ContentLength));
        Assert.Equal(1, map.Remove("X-Y"));
        Assert.Equal(0, map.Count);
    }

    [Theory]
    [InlineData("x", "a\r\nInjected: 1")]
    [InlineData("x", "a\nb")]
    [InlineData("x", "a\u0000")]
    [InlineData("x", "\u0100")]
    [InlineData("bad name", "v")]
    [InlineData("", "v")]
    [InlineData("x:y", "v")]
    public void AddRefusesWhatCouldSplitAMessage(string name, string value)
    {
        var map = new HttpHeaderMap();
        map.Add("before", "1");

        Assert.Throws<ArgumentException>(() => map.Add(name, value));
        Assert.Equal("before: 1\n", Http1Feeder.Fields(map));
    }

    [Fact]
    public void Latin1ValuesRoundTrip()
    {
        var map = new HttpHeaderMap();
        map.Add("x", "caf\u00e9 \u00ff");

        Assert.Equal([0x63, 0x61, 0x66, 0xE9, 0x20, 0xFF], map.GetValueBytes(0).ToArray());
        Assert.Equal("caf\u00e9 \u00ff", map.GetValue(0));
    }

    [Fact]
    public void GrowsPastItsInitialArenaAndEntries()
    {
        var map = new HttpHeaderMap();
        string big = new('v', 5000);
        for (int i = 0; i < 40; i++)
        {
            map.Add($"x-{i}", i == 20 ? big : i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        Assert.Equal(40, map.Count);
        Assert.Equal(big, map.GetValue("X-20"));
        Assert.Equal("39", map.GetValue("x-39"));
    }

    [Fact]
    public void CopyFromIsIndependent()
    {
        var source = new HttpHeaderMap();
        source.Add("Host", "a");
        source.Add("x", "1");
        var copy = new HttpHeaderMap();
        copy.Add("old", "gone");

        copy.CopyFrom(source);
        source.Set(KnownHeader.Host, "changed");

        Assert.Equal("host: a\nx: 1\n", Http1Feeder.Fields(copy));
        Assert.True(copy.Contains(KnownHeader.Host));
    }

    [Fact]
    public void KnownHeaderLookupIgnoresCase()
    {
        Assert.Equal(KnownHeader.TransferEncoding, KnownHeaders.Lookup("TRANSFER-encoding"u8));
        Assert.Equal(KnownHeader.Te, KnownHeaders.Lookup("TE".AsSpan()));
        Assert.Equal(KnownHeader.None, KnownHeaders.Lookup("transfer-encodings"u8));
        Assert.Equal(KnownHeader.None, KnownHeaders.Lookup("transfer_encoding"u8));
        for (int i = 1; i < KnownHeaders.Count; i++)
        {
            var known = (KnownHeader)i;
            Assert.Equal(known, KnownHeaders.Lookup(KnownHeaders.GetName(known).ToUpperInvariant().AsSpan()));
        }
    }
}
