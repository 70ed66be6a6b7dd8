using System.Reflection;
using Google.Protobuf.Reflection;

namespace Legate.Config.Semantic;

internal static class EnumNames
{
    /// <summary>The proto name of an enum value (<c>ROUND_ROBIN</c>), as users write it in config.</summary>
    public static string ToEnumName<T>(this T value)
        where T : struct, Enum
    {
        var field = typeof(T).GetField(value.ToString());
        return field?.GetCustomAttribute<OriginalNameAttribute>()?.Name ?? value.ToString();
    }
}
