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
internal sealed record AdminHandler(
    string Path,
    string HelpText,
    bool MutatesState,
    Func<HttpContext, ValueTask<AdminResponse>> Handler);
