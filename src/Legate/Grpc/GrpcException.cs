namespace Legate.Grpc;

/// <summary>A call ended with a non-OK status (from the peer's trailers, or decided locally: deadline, transport failure).</summary>
internal sealed class GrpcException : Exception
{
    public GrpcException(GrpcStatusCode status, string message, Exception? inner = null)
        : base(message, inner)
    {
        Status = status;
    }

    public GrpcStatusCode Status { get; }

    public override string ToString() => $"grpc-status {(int)Status} ({Status}): {Message}";
}
