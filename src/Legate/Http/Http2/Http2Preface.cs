using System.Buffers;
using System.IO.Pipelines;

namespace Legate.Http.Http2;

/// <summary>
/// <c>codec_type: AUTO</c> on a cleartext connection (Envoy's codec sniffing): a connection is
/// HTTP/2 when its first bytes are the client connection preface (RFC 9113 §3.4), else HTTP/1.1.
/// </summary>
internal static class Http2Preface
{
    /// <summary>"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".</summary>
    public static ReadOnlySpan<byte> Bytes => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    /// <summary>
    /// Peeks at the start of <paramref name="input"/> without consuming anything (the codec reads the
    /// same bytes again) until the 24 preface bytes arrived or a byte differs. True for HTTP/2; false
    /// for anything else, including a peer that closed before sending enough.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired first (idle timeout, drain).</exception>
    public static async ValueTask<bool> DetectAsync(PipeReader input, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            var match = Compare(buffer, out var complete);
            if (!match || complete || result.IsCompleted || result.IsCanceled)
            {
                input.AdvanceTo(buffer.Start);
                return match && complete;
            }

            // A prefix of the preface so far: look again when more arrives.
            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Whether <paramref name="buffer"/> starts like the preface; <paramref name="complete"/> once all 24 bytes were compared.</summary>
    internal static bool Compare(in ReadOnlySequence<byte> buffer, out bool complete)
    {
        var preface = Bytes;
        var length = (int)Math.Min(buffer.Length, preface.Length);
        Span<byte> head = stackalloc byte[24];
        buffer.Slice(0, length).CopyTo(head);
        complete = length == preface.Length;
        return head[..length].SequenceEqual(preface[..length]);
    }
}
