namespace Legate.Http.Http1;

/// <summary>The Connection header tokens the codec acts on.</summary>
[Flags]
internal enum ConnectionOptions
{
    None = 0,
    Close = 1,
    KeepAlive = 2,
    Upgrade = 4,
}
