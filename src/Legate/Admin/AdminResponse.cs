namespace Legate.Admin;

/// <summary>What an admin handler answers: status, content type and body.</summary>
internal sealed record AdminResponse(int Status, string ContentType, string Body)
{
    // Envoy's admin content types.
    public const string TextContentType = "text/plain; charset=UTF-8";
    public const string JsonContentType = "application/json";
    public const string HtmlContentType = "text/html; charset=UTF-8";

    public static AdminResponse Text(string body, int status = 200) => new(status, TextContentType, body);

    public static AdminResponse Json(string body, int status = 200) => new(status, JsonContentType, body);

    public static AdminResponse Html(string body, int status = 200) => new(status, HtmlContentType, body);
}
