namespace Legate.Server;

/// <summary>The command line is wrong; the message says which flag and why, ready to print.</summary>
internal sealed class CommandLineException : Exception
{
    public CommandLineException(string message)
        : base(message)
    {
    }
}
