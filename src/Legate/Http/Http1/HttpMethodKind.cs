namespace Legate.Http.Http1;

/// <summary>The methods the codec treats specially, plus <see cref="Other"/>.</summary>
internal enum HttpMethodKind : byte
{
    Other,
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
}
