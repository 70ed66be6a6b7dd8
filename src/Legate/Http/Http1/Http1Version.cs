namespace Legate.Http.Http1;

/// <summary>The HTTP/1 minor versions the codec speaks.</summary>
internal enum Http1Version : byte
{
    Http10,
    Http11,
}
