using Microsoft.AspNetCore.Http;

namespace Legate.Admin;

/// <summary>
/// One admin endpoint. <paramref name="MutatesState"/> endpoints accept POST only, as in Envoy
/// (so a crawler following links cannot, say, quit the server); the others accept any method.
/// </summary>
/// <param name="Path">The exact path, e.g. <c>/server_info</c>; the query string is not part of it.</param>
/// <param name="HelpText">The line shown by <c>/help</c> and on the home page.</param>
/// <param name="MutatesState">True when the endpoint changes the server (POST required).</param>
/// <param name="Handler">Produces the response.</param>
/// <param name="IsPresent">
/// For an endpoint that exists only while something provides it (Envoy's <c>/tap</c>, added with the
/// first admin-controlled tap filter and removed with the last): false hides it from <c>/help</c> and
/// the home page and answers its path as unknown. Null: always there.
/// </param>
internal sealed record AdminHandler(
    string Path,
    string HelpText,
    bool MutatesState,
    Func<HttpContext, ValueTask<AdminResponse>> Handler,
    Func<bool>? IsPresent = null)
{
    public bool Present => IsPresent?.Invoke() ?? true;
}
