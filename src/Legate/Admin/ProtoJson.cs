using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Google.Protobuf;
using Legate.Config;

namespace Legate.Admin;

/// <summary>
/// JSON output of proto messages as Envoy's admin prints them: proto field names (snake_case),
/// one-space indentation, and <c>Any</c> expanded with <c>@type</c> through the registry of every
/// generated API type.
/// </summary>
internal static class ProtoJson
{
    private static readonly Lazy<JsonFormatter> s_withDefaults = new(() => Create(formatDefaults: true));
    private static readonly Lazy<JsonFormatter> s_withoutDefaults = new(() => Create(formatDefaults: false));

    private static readonly JsonWriterOptions s_indented = new()
    {
        Indented = true,
        IndentCharacter = ' ',
        IndentSize = 1,

        // Config values are shown as written (no \u003C for '<'); the admin serves application/json.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Prints every primitive field, default or not (Envoy's <c>/server_info</c>).</summary>
    public static string FormatWithDefaults(IMessage message) => Indent(s_withDefaults.Value.Format(message));

    /// <summary>Prints only the fields that are set (Envoy's <c>/config_dump</c>).</summary>
    public static string Format(IMessage message) => Indent(s_withoutDefaults.Value.Format(message));

    private static JsonFormatter Create(bool formatDefaults) =>
        new(JsonFormatter.Settings.Default
            .WithFormatDefaultValues(formatDefaults)
            .WithPreserveProtoFieldNames(true)
            .WithTypeRegistry(ApiTypes.Registry));

    // Google.Protobuf's own indentation puts "@type" on the line of the opening brace; rewriting the
    // compact output keeps every member on its own line. Numbers and strings pass through unchanged.
    private static string Indent(string compact)
    {
        using var document = JsonDocument.Parse(compact);
        var buffer = new ArrayBufferWriter<byte>(compact.Length * 2);
        using (var writer = new Utf8JsonWriter(buffer, s_indented))
        {
            document.WriteTo(writer);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan) + "\n";
    }
}
