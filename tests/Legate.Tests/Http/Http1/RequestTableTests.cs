namespace Legate.Tests.Http.Http1;

/// <summary>The request table: every valid row parses, every invalid row fails with its exact status and details.</summary>
public sealed class RequestTableTests
{
    [Fact]
    public void TheTableIsBroad()
    {
        Assert.True(RequestCases.Valid.Count() + RequestCases.Invalid.Count() >= 60);
    }

    [Theory]
    [MemberData(nameof(RequestCases.ValidNames), MemberType = typeof(RequestCases))]
    public void ValidRequestParses(string name)
    {
        RequestCase c = RequestCases.Get(name);
        List<ParsedMessage> messages = Http1Feeder.Requests(c.Raw, c.Options);

        ParsedMessage first = Assert.Single(messages);
        Assert.False(first.IsError, first.ToString());
        Assert.False(first.Truncated);
    }

    [Theory]
    [MemberData(nameof(RequestCases.InvalidNames), MemberType = typeof(RequestCases))]
    public void InvalidRequestIsRejected(string name)
    {
        RequestCase c = RequestCases.Get(name);
        List<ParsedMessage> messages = Http1Feeder.Requests(c.Raw, c.Options);

        ParsedMessage first = Assert.Single(messages);
        Assert.True(first.IsError, first.ToString());
        Assert.Equal((c.Status, c.Details), (first.ErrorStatus, first.ErrorDetails));
    }

    /// <summary>
    /// The property that makes the codec safe to drive from a socket: however the bytes are split
    /// into reads and segments, the messages (or the error) are the same as with everything at once.
    /// </summary>
    [Theory]
    [MemberData(nameof(RequestCases.AllNames), MemberType = typeof(RequestCases))]
    public void ByteByByteGivesTheSameResultAsAllAtOnce(string name)
    {
        RequestCase c = RequestCases.Get(name);
        List<ParsedMessage> whole = Http1Feeder.Requests(c.Raw, c.Options);

        // One-byte segments for the big rows would make the test, not the codec, quadratic.
        int tiny = c.Raw.Length > 4096 ? 256 : 1;
        Assert.Equal(whole, Http1Feeder.Requests(c.Raw, c.Options, step: 1, segmentSize: tiny));
        Assert.Equal(whole, Http1Feeder.Requests(c.Raw, c.Options, step: 1));
        Assert.Equal(whole, Http1Feeder.Requests(c.Raw, c.Options, step: 7, segmentSize: 3));
        Assert.Equal(whole, Http1Feeder.Requests(c.Raw, c.Options, segmentSize: 2));
    }
}
