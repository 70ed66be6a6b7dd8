using System.Buffers.Binary;
using Google.Protobuf;

namespace Legate.Tracing.Zipkin;

/// <summary>
/// Zipkin's protobuf span list (<c>collector_endpoint_version: HTTP_PROTO</c>): a
/// <c>zipkin.proto3.ListOfSpans</c> written by field number, because Zipkin's proto is not part of
/// the Envoy API snapshot and one message shape does not justify generating it. The same span
/// content as <see cref="ZipkinJson"/>: ids as big-endian bytes (the trace id 16 bytes when it has
/// a high half, else 8), kind, name, timestamp (fixed64) and duration in microseconds,
/// <c>local_endpoint.service_name</c>, tags, <c>shared</c>.
/// </summary>
internal static class ZipkinProto
{
    public const string ContentType = "application/x-protobuf";

    // zipkin.proto3 field numbers.
    private const int ListOfSpansSpans = 1;
    private const int SpanTraceId = 1;
    private const int SpanParentId = 2;
    private const int SpanId = 3;
    private const int SpanKind = 4;
    private const int SpanName = 5;
    private const int SpanTimestamp = 6;
    private const int SpanDuration = 7;
    private const int SpanLocalEndpoint = 8;
    private const int SpanTags = 11;
    private const int SpanShared = 13;
    private const int EndpointServiceName = 1;

    // zipkin.proto3.Span.Kind.
    private const int KindClient = 1;
    private const int KindServer = 2;

    public static byte[] Serialize(IReadOnlyList<ZipkinSpan> spans, string serviceName) => Message(list =>
    {
        foreach (var span in spans)
        {
            WriteMessage(list, ListOfSpansSpans, EncodeSpan(span, serviceName));
        }
    });

    private static byte[] EncodeSpan(ZipkinSpan span, string serviceName) => Message(o =>
    {
        Span<byte> traceId = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(traceId, span.TraceIdHigh);
        BinaryPrimitives.WriteUInt64BigEndian(traceId[8..], span.TraceIdLow);
        o.WriteTag(SpanTraceId, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(span.TraceIdHigh != 0 ? traceId : traceId[8..]));
        if (span.ParentId != 0)
        {
            WriteId(o, SpanParentId, span.ParentId);
        }

        WriteId(o, SpanId, span.Id);
        o.WriteTag(SpanKind, WireFormat.WireType.Varint);
        o.WriteEnum(span.Kind == ZipkinSpanKind.Server ? KindServer : KindClient);
        if (span.Name.Length > 0)
        {
            o.WriteTag(SpanName, WireFormat.WireType.LengthDelimited);
            o.WriteString(span.Name);
        }

        o.WriteTag(SpanTimestamp, WireFormat.WireType.Fixed64);
        o.WriteFixed64((ulong)span.TimestampMicros);
        o.WriteTag(SpanDuration, WireFormat.WireType.Varint);
        o.WriteUInt64((ulong)span.DurationMicros);
        WriteMessage(o, SpanLocalEndpoint, Message(endpoint =>
        {
            if (serviceName.Length > 0)
            {
                endpoint.WriteTag(EndpointServiceName, WireFormat.WireType.LengthDelimited);
                endpoint.WriteString(serviceName);
            }
        }));

        // A map field is a repeated entry message: key = 1, value = 2.
        foreach (var (name, value) in span.Tags)
        {
            WriteMessage(o, SpanTags, Message(entry =>
            {
                entry.WriteTag(1, WireFormat.WireType.LengthDelimited);
                entry.WriteString(name);
                entry.WriteTag(2, WireFormat.WireType.LengthDelimited);
                entry.WriteString(value);
            }));
        }

        if (span.Shared)
        {
            o.WriteTag(SpanShared, WireFormat.WireType.Varint);
            o.WriteBool(true);
        }
    });

    private static void WriteId(CodedOutputStream o, int field, ulong id)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, id);
        o.WriteTag(field, WireFormat.WireType.LengthDelimited);
        o.WriteBytes(ByteString.CopyFrom(bytes));
    }

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
