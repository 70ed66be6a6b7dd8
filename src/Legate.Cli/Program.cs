using Legate.Server;

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
