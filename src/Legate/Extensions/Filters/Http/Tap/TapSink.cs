using System.Text;
using Google.Protobuf;
using Envoy.Data.Tap.V3;
using Format = Envoy.Config.Tap.V3.OutputSink.Types.Format;

namespace Legate.Extensions.Filters.Http.Tap;

/// <summary>Where a tap writes its traces (<c>config.tap.v3.OutputSink</c>).</summary>
internal abstract class TapSink
{
    protected TapSink(Format format) => Format = format;

    public Format Format { get; }

    /// <summary>True for the JSON formats: the trace body is then <c>as_string</c> or <c>as_bytes</c>.</summary>
    public bool BodyAsString => Format == Format.JsonBodyAsString;

    /// <summary>Hands over one finished trace; must not block the caller (the stream's loop thread).</summary>
    public abstract void Submit(TraceWrapper trace, ulong traceId);

    /// <summary>
    /// The trace in the sink's format. JSON as Envoy prints it (proto field names, every primitive
    /// field, one-space indentation, a final newline); the binary formats are the plain or
    /// length-delimited protobuf encoding; PROTO_TEXT the text format.
    /// </summary>
    protected byte[] Encode(TraceWrapper trace)
    {
        switch (Format)
        {
            case Format.ProtoBinary:
                return trace.ToByteArray();
            case Format.ProtoBinaryLengthDelimited:
            {
                using var stream = new MemoryStream();
                trace.WriteDelimitedTo(stream);
                return stream.ToArray();
            }

            case Format.ProtoText:
                return Encoding.UTF8.GetBytes(ProtoTextFormat.Format(trace));
            default:
                return Encoding.UTF8.GetBytes(Legate.Admin.ProtoJson.FormatWithDefaults(trace));
        }
    }

    /// <summary>The file extension Envoy's file_per_tap sink uses for <paramref name="format"/>.</summary>
    public static string FileExtension(Format format) => format switch
    {
        Format.ProtoBinary => "pb",
        Format.ProtoBinaryLengthDelimited => "pb_length_delimited",
        Format.ProtoText => "pb_text",
        _ => "json",
    };
}
