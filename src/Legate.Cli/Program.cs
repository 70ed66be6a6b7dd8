using Legate.Cli;
using Legate.Server;

// Tiered PGO must profile from a method's first call (docs/performance.md, "JIT tiering and the
// tail"), and the runtime reads that knob only from the environment, before any managed code runs.
// So the first thing the executable does is start itself again with it set (Linux: execve keeps
// the process id, the open descriptors and the arguments). An explicit setting wins.
RuntimeKnobs.ReexecWithTieringKnobs();

// Socket completions run on the epoll thread instead of being queued to the thread pool: one
// thread hop less per read and write on the data path. Safe because Legate's connection code
// never blocks. Read by the runtime when the first socket is used, so it must be set first.
// An explicit setting in the environment wins.
if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
{
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
}

// The legate executable: everything lives in MainCommon so tests can run it in-process too.
return await MainCommon.RunAsync(args, Console.Out, Console.Error).ConfigureAwait(false);
