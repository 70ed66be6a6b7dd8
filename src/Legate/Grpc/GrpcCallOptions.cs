namespace Legate.Grpc;

/// <summary>Per-call settings: deadline, initial metadata (request headers) and cancellation.</summary>
internal sealed class GrpcCallOptions
{
    public static readonly GrpcCallOptions Default = new();

    /// <summary>How long the whole call may take (sent as <c>grpc-timeout</c>); null: no deadline (streams).</summary>
    public TimeSpan? Deadline { get; init; }

    /// <summary>Extra request headers (lower-case names); reserved names (<c>:*</c>, <c>grpc-*</c>, <c>te</c>, <c>content-type</c>) are not allowed.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Metadata { get; init; } = [];

    public CancellationToken CancellationToken { get; init; }
}
