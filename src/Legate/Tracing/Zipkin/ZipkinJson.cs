using System.Buffers;
using System.Text.Json;

namespace Legate.Tracing.Zipkin;

/// <summary>Zipkin's v2 JSON span list (<c>collector_endpoint_version: HTTP_JSON</c>), as Envoy writes it.</summary>
internal static class ZipkinJson
{
    public static byte[] Serialize(IReadOnlyList<ZipkinSpan> spans, string serviceName)
    {
        var buffer = new ArrayBufferWriter<byte>(512 * Math.Max(1, spans.Count));
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
            foreach (var span in spans)
            {
                json.WriteStartObject();
                json.WriteString("traceId", span.TraceId);
                if (span.ParentId != 0)
                {
                    json.WriteString("parentId", B3Context.Hex(span.ParentId));
                }

                json.WriteString("id", span.SpanId);
                json.WriteString("kind", span.Kind == ZipkinSpanKind.Server ? "SERVER" : "CLIENT");
                if (span.Name.Length > 0)
                {
                    json.WriteString("name", span.Name);
                }

                json.WriteNumber("timestamp", span.TimestampMicros);
                json.WriteNumber("duration", span.DurationMicros);
                json.WriteStartObject("localEndpoint");
                if (serviceName.Length > 0)
                {
                    json.WriteString("serviceName", serviceName);
                }

                json.WriteEndObject();
                if (span.Shared)
                {
                    json.WriteBoolean("shared", true);
                }

                if (span.Tags.Count > 0)
                {
                    json.WriteStartObject("tags");
                    foreach (var (name, value) in span.Tags)
                    {
                        json.WriteString(name, value);
                    }

                    json.WriteEndObject();
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
