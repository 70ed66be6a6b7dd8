namespace Legate.Http.Http1;

internal enum HeadScanResult
{
    NeedMoreData,
    Complete,
    TooLarge,
}
