using System.Runtime.InteropServices;

namespace Legate.Server;

/// <summary>
/// Makes SIGINT catchable when the process started with it ignored. A shell without job control
/// (a script running <c>legate … &amp;</c>, a CI step started in the background) starts background
/// commands with SIGINT and SIGQUIT ignored, and .NET then installs no handler for them, so a
/// <see cref="PosixSignalRegistration"/> for SIGINT never fires and <c>kill -INT</c> does nothing.
/// Envoy catches SIGINT however it was started (libevent installs its handler with sigaction), so
/// Legate puts the default disposition back before registering.
/// </summary>
internal static partial class InterruptSignal
{
    private const int SIGINT = 2;
    private const nint SIG_DFL = 0;
    private const nint SIG_IGN = 1;

    /// <summary>True when SIGINT was ignored and is now back to the default (so the runtime may take it).</summary>
    public static bool RestoreIfIgnored()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        // struct sigaction starts with the handler on Linux; 256 bytes cover every architecture's layout.
        Span<byte> current = stackalloc byte[256];
        unsafe
        {
            fixed (byte* p = current)
            {
                if (Sigaction(SIGINT, null, p) != 0 || *(nint*)p != SIG_IGN)
                {
                    return false;
                }
            }
        }

        return Signal(SIGINT, SIG_DFL) == SIG_IGN;
    }

    [LibraryImport("libc", EntryPoint = "sigaction", SetLastError = true)]
    private static unsafe partial int Sigaction(int signal, byte* action, byte* previous);

    [LibraryImport("libc", EntryPoint = "signal", SetLastError = true)]
    private static partial nint Signal(int signal, nint handler);
}
