namespace Legate.Network;

/// <summary>A socket could not be bound; the message names the address and the reason, e.g. address already in use.</summary>
internal sealed class BindException : Exception
{
    public BindException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
