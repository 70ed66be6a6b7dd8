using System.Buffers.Binary;
using Google.Protobuf;

namespace Legate.Tracing.OpenTelemetry;

/// <summary>
/// Writes an OTLP <c>ExportTraceServiceRequest</c> (opentelemetry.proto.collector.trace.v1) in the
/// protobuf wire format by field number: the OTLP protos are not in Legate's API snapshot and
/// one message shape does not justify generating them. One ResourceSpans (the resource's attributes:
/// <c>service.name</c> and the detected ones) with one ScopeSpans holding every span.
/// </summary>
internal static class OtlpEncoder
{
    public static byte[] ExportTraceServiceRequest(IReadOnlyList<OtelSpan> spans, OtelResource resource) =>
        Message(o => WriteMessage(o, 1, ResourceSpans(spans, resource)));

    /// <summary>The one ResourceSpans message of a request (field 1 of ExportTraceServiceRequest).</summary>
    public static byte[] ResourceSpans(IReadOnlyList<OtelSpan> spans, OtelResource resource)
    {
        var scopeSpans = Message(o =>
        {
            foreach (var span in spans)
            {
                WriteMessage(o, 2, EncodeSpan(span));
            }
        });
        var resourceMessage = Message(o =>
        {
            foreach (var (key, value) in resource.Attributes)
            {
                WriteMessage(o, 1, KeyValue(key, value));
            }
        });
        return Message(o =>
        {
            WriteMessage(o, 1, resourceMessage);
            WriteMessage(o, 2, scopeSpans);
        });
    }

    private static byte[] EncodeSpan(OtelSpan span) => Message(o =>
    {
        Span<byte> traceId = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(traceId, span.TraceIdHigh);
        BinaryPrimitives.WriteUInt64BigEndian(traceId[8..], span.TraceIdLow);
        o.WriteTag(1, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(traceId));
        WriteId(o, 2, span.Id);
        if (span.TraceState.Length > 0)
        {
            o.WriteTag(3, WireFormat.WireType.LengthDelimited);
            o.WriteString(span.TraceState);
        }

        if (span.ParentId != 0)
        {
            WriteId(o, 4, span.ParentId);
        }

        o.WriteTag(5, WireFormat.WireType.LengthDelimited);
        o.WriteString(span.Name);
        o.WriteTag(6, WireFormat.WireType.Varint);
        o.WriteEnum((int)span.Kind);
        o.WriteTag(7, WireFormat.WireType.Fixed64);
        o.WriteFixed64((ulong)span.StartUnixNanos);
        o.WriteTag(8, WireFormat.WireType.Fixed64);
        o.WriteFixed64((ulong)span.EndUnixNanos);
        foreach (var (key, value) in span.Attributes)
        {
            WriteMessage(o, 9, KeyValue(key, value));
        }

        if (span.StatusCode != 0)
        {
            // Span.status (15): Status.message (2), Status.code (3); an unset status is left out.
            WriteMessage(o, 15, Message(status =>
            {
                if (span.StatusMessage.Length > 0)
                {
                    status.WriteTag(2, WireFormat.WireType.LengthDelimited);
                    status.WriteString(span.StatusMessage);
                }

                status.WriteTag(3, WireFormat.WireType.Varint);
                status.WriteEnum(span.StatusCode);
            }));
        }
    });

    private static void WriteId(CodedOutputStream o, int field, ulong id)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, id);
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(bytes));
    }

    /// <summary>A KeyValue with a string AnyValue.</summary>
    private static byte[] KeyValue(string key, string value) => Message(o =>
    {
        o.WriteTag(1, WireFormat.WireType.LengthDelimited);
        o.WriteString(key);
        WriteMessage(o, 2, Message(v =>
        {
            v.WriteTag(1, WireFormat.WireType.LengthDelimited);
            v.WriteString(value);
        }));
    });

    private static void WriteMessage(CodedOutputStream o, int field, byte[] message)
    {
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(message));
    }

    private static byte[] Message(Action<CodedOutputStream> write)
    {
        using var stream = new MemoryStream();
        using (var output = new CodedOutputStream(stream, leaveOpen: true))
        {
            write(output);
        }

        return stream.ToArray();
    }
}
