using Envoy.Config.Core.V3;
using Google.Protobuf;

namespace Legate.Config.Semantic;

/// <summary>
/// Envoy reads every <c>DataSource.filename</c> (certificates, keys, Lua and Wasm code, response
/// bodies) when it loads the configuration, so a missing file is a load error, reported here
/// with the path of the field that names it.
/// </summary>
internal static class DataSourceChecker
{
    // Only fields that can hold a DataSource (or an Any, which may hold one) are walked.
    private static readonly TypeReach s_reach = new(type => type == DataSource.Descriptor || type == Google.Protobuf.WellKnownTypes.Any.Descriptor);

    public static void Check(IMessage root, ConfigErrors errors, Func<string, bool>? fileExists = null, Func<IMessage, bool>? skip = null)
    {
        fileExists ??= File.Exists;
        MessageWalker.ForEach(root, "", (message, path) =>
        {
            if (message is DataSource { SpecifierCase: DataSource.SpecifierOneofCase.Filename } source
                && source.Filename.Length > 0 && !fileExists(source.Filename))
            {
                errors.Add(FieldPath.Field(path, "filename"), $"missing file {source.Filename}");
            }
        }, skip, s_reach.Follows);
    }
}
