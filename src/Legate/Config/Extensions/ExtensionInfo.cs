namespace Legate.Config.Extensions;

/// <summary>
/// One Envoy extension as Legate knows it: its canonical name (<c>envoy.filters.http.router</c>),
/// what kind of extension it is, the proto message that configures it, and whether Legate
/// implements it yet.
/// </summary>
internal sealed record ExtensionInfo(string Name, ExtensionCategory Category, string ConfigType, bool Implemented)
{
    public string TypeUrl => "type.googleapis.com/" + ConfigType;
}
