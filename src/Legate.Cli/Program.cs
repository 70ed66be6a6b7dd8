using Legate.Server;

// The legate executable: everything lives in MainCommon so tests can run it in-process too.
return await MainCommon.RunAsync(args, Console.Out, Console.Error).ConfigureAwait(false);
