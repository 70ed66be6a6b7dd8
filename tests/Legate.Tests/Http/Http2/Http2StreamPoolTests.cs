using System.Diagnostics;
using Legate.Http.Http2;
using Legate.Tests.Extensions.Filters.Http;
using Microsoft.AspNetCore.Http;

namespace Legate.Tests.Http.Http2;

/// <summary>
/// The per-connection pool of HTTP/2 stream objects, over the real filter manager: only a stream
/// that ended cleanly serves the next one, with nothing of the previous request left in it.
/// </summary>
public sealed class Http2StreamPoolTests
{
    private const string Yaml = """
        static_resources:
          listeners:
          - name: web
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: web
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/a" }
                        direct_response: { status: 201, body: { inline_string: "a" } }
                      - match: { prefix: "/" }
                        direct_response: { status: 202, body: { inline_string: "b" } }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
        """;

    [Fact]
    public async Task ACleanlyEndedStreamServesTheNextOneWithFreshState()
    {
        using var chain = new FilterChainHarness(Yaml);
        var pool = new Http2StreamPool();
        var firstContext = new DefaultHttpContext();
        var first = pool.Rent(firstContext, chain.Config);
        await RunAsync(first, "/a", ("x-only-first", "1"));
        Assert.Equal(201, firstContext.Response.StatusCode);
        pool.Return(first);

        var secondContext = new DefaultHttpContext();
        var second = pool.Rent(secondContext, chain.Config);
        Assert.Same(first, second);
        await RunAsync(second, "/b");

        // The route, the head and the response went to the second request's own objects.
        Assert.Equal(202, secondContext.Response.StatusCode);
        Assert.Equal(201, firstContext.Response.StatusCode);
        Assert.False(second.Head.Headers.Contains("x-only-first"));
        Assert.Equal(202, second.Stream.Info.ResponseCode);
        Assert.True(second.Reusable);

        // Header strings the same as the previous response's are the same string objects.
        foreach (var name in new[] { "content-type", "server" })
        {
            var before = firstContext.Response.Headers[name].ToString();
            var after = secondContext.Response.Headers[name].ToString();
            Assert.Equal(before, after);
            Assert.Same(before, after);
        }

        Assert.NotEqual(firstContext.Response.Headers.ContentLength, 0);
    }

    [Fact]
    public async Task AResetStreamIsNotReused()
    {
        using var chain = new FilterChainHarness(Yaml);
        var pool = new Http2StreamPool();
        var encoder = pool.Rent(new DefaultHttpContext(), chain.Config);
        Begin(encoder, "/a");
        encoder.Stream.ResetStream();
        await encoder.Stream.WaitForResponseAsync();
        encoder.Stream.End();
        Assert.False(encoder.Reusable);
        pool.Return(encoder);

        Assert.NotSame(encoder, pool.Rent(new DefaultHttpContext(), chain.Config));
    }

    [Fact]
    public async Task AStreamOfAnotherConnectionManagerConfigIsNotReused()
    {
        using var chain = new FilterChainHarness(Yaml);
        using var other = new FilterChainHarness(Yaml);
        var pool = new Http2StreamPool();
        var encoder = pool.Rent(new DefaultHttpContext(), chain.Config);
        await RunAsync(encoder, "/a");
        pool.Return(encoder);

        var next = pool.Rent(new DefaultHttpContext(), other.Config);
        Assert.NotSame(encoder, next);
        Assert.Same(other.Config, next.Config);
    }

    [Fact]
    public async Task ThePoolKeepsAtMostItsCapacityAndNothingAfterClose()
    {
        using var chain = new FilterChainHarness(Yaml);
        var pool = new Http2StreamPool();
        var encoders = new List<Http2ResponseEncoder>();
        for (var i = 0; i < Http2StreamPool.Capacity + 1; i++)
        {
            encoders.Add(pool.Rent(new DefaultHttpContext(), chain.Config));
        }

        foreach (var encoder in encoders)
        {
            await RunAsync(encoder, "/a");
            pool.Return(encoder);
        }

        // The last one returned found the pool full; the rest come back newest first.
        var reused = new HashSet<Http2ResponseEncoder>(ReferenceEqualityComparer.Instance);
        for (var i = 0; i < Http2StreamPool.Capacity; i++)
        {
            reused.Add(pool.Rent(new DefaultHttpContext(), chain.Config));
        }

        Assert.Equal(Http2StreamPool.Capacity, reused.Count);
        Assert.DoesNotContain(encoders[^1], reused);
        Assert.DoesNotContain(pool.Rent(new DefaultHttpContext(), chain.Config), encoders);

        var last = encoders[0];
        pool.Close();
        await RunAsync(last, "/a");
        pool.Return(last);
        Assert.NotSame(last, pool.Rent(new DefaultHttpContext(), chain.Config));
    }

    private static void Begin(Http2ResponseEncoder encoder, string path, params (string Name, string Value)[] headers)
    {
        var head = encoder.Head;
        head.Reset();
        head.SetMethod("GET");
        head.SetPath(path);
        head.Headers.Add("host", "example.com");
        foreach (var (name, value) in headers)
        {
            head.Headers.Add(name, value);
        }

        encoder.Stream.Begin(head, Stopwatch.GetTimestamp());
    }

    private static async Task RunAsync(Http2ResponseEncoder encoder, string path, params (string Name, string Value)[] headers)
    {
        Begin(encoder, path, headers);
        await encoder.Stream.DecodeHeadersAsync(endStream: true);
        await encoder.Stream.WaitForResponseAsync();
        await encoder.CompleteAsync();
        encoder.Stream.End();
    }
}
