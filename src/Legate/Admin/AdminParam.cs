namespace Legate.Admin;

/// <summary>
/// One query parameter of an admin endpoint as Envoy describes it (its <c>ParamDescriptor</c>):
/// <c>/help</c> prints <c>      id: help</c> under the endpoint, plus <c>; One of (a, b)</c> for an enum.
/// </summary>
/// <param name="Id">The parameter's name in the query string.</param>
/// <param name="Help">Envoy's description.</param>
/// <param name="Choices">The values of an enum parameter; null for strings and booleans.</param>
internal sealed record AdminParam(string Id, string Help, string[]? Choices = null);
