using Legate.Stats;

namespace Legate.Tests.Stats;

public sealed class StatsStoreTests
{
    [Fact]
    public void SameNameReturnsTheSameObject()
    {
        var store = new StatsStore();

        Assert.Same(store.Counter("cluster.foo.upstream_rq_total"), store.Counter("cluster.foo.upstream_rq_total"));
        Assert.Same(store.Gauge("server.live", ImportMode.NeverImport), store.Gauge("server.live", ImportMode.NeverImport));
        Assert.Same(store.Histogram("cluster.foo.upstream_rq_time", HistogramUnit.Milliseconds), store.Histogram("cluster.foo.upstream_rq_time", HistogramUnit.Milliseconds));
    }

    [Fact]
    public void CounterAndGaugeUpdatesAllocateNothing()
    {
        var store = new StatsStore();
        var counter = store.Counter("c");
        var gauge = store.Gauge("g", ImportMode.Accumulate);
        var histogram = store.Histogram("h", HistogramUnit.Milliseconds);
        // Warm up so JIT and tiering allocations do not land in the measured window.
        for (var i = 0; i < 1000; i++)
        {
            counter.Inc();
            gauge.Inc();
            gauge.Dec();
            histogram.Record(i);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100_000; i++)
        {
            counter.Inc();
            counter.Add(2);
            gauge.Add(3);
            gauge.Sub(1);
            gauge.Set(i);
            histogram.Record(i);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Equal(1000 + 300_000, counter.Value);
    }

    [Fact]
    public void HistogramSamplesQueuedForTheStatsdSinksAllocateNothing()
    {
        var store = new StatsStore();
        var before = store.Histogram("before", HistogramUnit.Milliseconds);
        var queue = store.EnableSampleQueue();
        var after = store.Histogram("after", HistogramUnit.Milliseconds);
        var drained = new List<(Histogram Histogram, long Value)>(HistogramSampleQueue.DefaultCapacity);
        // Warm both (first records and the JIT's tiering may allocate once); then measure.
        for (var i = 0; i < 1000; i++)
        {
            before.Record(i);
            after.Record(i);
        }

        queue.Drain(drained);
        drained.Clear();

        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            before.Record(i);
            after.Record(i);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - allocatedBefore);

        // Histograms made before and after the queue was enabled both feed it, in recording order.
        Assert.Equal(0, queue.Drain(drained));
        Assert.Equal(20_000, drained.Count);
        Assert.Equal((before, 0L), drained[0]);
        Assert.Equal((after, 9_999L), drained[^1]);
    }

    [Fact]
    public void AFullSampleQueueDropsAndCountsInsteadOfGrowing()
    {
        var store = new StatsStore();
        var histogram = store.Histogram("h", HistogramUnit.Milliseconds);
        var queue = new HistogramSampleQueue(capacity: 4);
        for (var i = 0; i < 6; i++)
        {
            queue.Enqueue(histogram, i);
        }

        var drained = new List<(Histogram Histogram, long Value)>();
        Assert.Equal(2, queue.Drain(drained));
        Assert.Equal([0L, 1, 2, 3], drained.Select(s => s.Value));

        // Drained slots are free again, and the ring wraps around.
        drained.Clear();
        for (var i = 10; i < 13; i++)
        {
            queue.Enqueue(histogram, i);
        }

        Assert.Equal(0, queue.Drain(drained));
        Assert.Equal([10L, 11, 12], drained.Select(s => s.Value));
    }

    [Fact]
    public async Task ConcurrentRecordersLoseNoSample()
    {
        var store = new StatsStore();
        var histogram = store.Histogram("h", HistogramUnit.Milliseconds);
        var queue = store.EnableSampleQueue();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 5_000; i++)
            {
                histogram.Record((t * 10_000) + i);
            }
        })));

        var drained = new List<(Histogram Histogram, long Value)>();
        Assert.Equal(0, queue.Drain(drained));
        Assert.Equal(Enumerable.Range(0, 4).SelectMany(t => Enumerable.Range(t * 10_000, 5_000)).Select(v => (long)v).Order(), drained.Select(s => s.Value).Order());
    }

    [Fact]
    public void ConcurrentIncrementsSumExactly()
    {
        var store = new StatsStore();
        var counter = store.Counter("c");
        var gauge = store.Gauge("g", ImportMode.Accumulate);
        const int threads = 8, perThread = 200_000;

        var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            for (var i = 0; i < perThread; i++)
            {
                counter.Inc();
                gauge.Inc();
            }
        })).ToArray();
        foreach (var t in workers)
        {
            t.Start();
        }

        foreach (var t in workers)
        {
            t.Join();
        }

        Assert.Equal((long)threads * perThread, counter.Value);
        Assert.Equal((long)threads * perThread, gauge.Value);
    }

    [Fact]
    public void UsedFlagSurvivesResetAndOnlyCountersAreReset()
    {
        var store = new StatsStore();
        var counter = store.Counter("c");
        var gauge = store.Gauge("g", ImportMode.Accumulate);
        Assert.False(counter.Used);
        Assert.False(gauge.Used);

        counter.Add(5);
        gauge.Set(7);
        store.ResetCounters();

        Assert.Equal(0, counter.Value);
        Assert.True(counter.Used);
        Assert.Equal(7, gauge.Value);
    }

    [Fact]
    public void HistogramBucketsSumAndCount()
    {
        var h = new StatsStore().Histogram("h", HistogramUnit.Milliseconds);
        foreach (var v in new long[] { 0, 1, 3, 5, 7, 4_000_000 })
        {
            h.Record(v);
        }

        var counts = h.BucketCounts();
        Assert.Equal(Histogram.DefaultBuckets.Length + 1, counts.Length);
        Assert.Equal(1, counts[0]); // 0 <= 0.5
        Assert.Equal(1, counts[1]); // 1 <= 1
        Assert.Equal(2, counts[2]); // 3, 5 <= 5
        Assert.Equal(1, counts[3]); // 7 <= 10
        Assert.Equal(1, counts[^1]); // above 3600000
        Assert.Equal(6, h.Count);
        Assert.Equal(4_000_016, h.Sum);
        Assert.Equal(0, h.Quantile(0));
        Assert.Equal(4_000_000, h.Quantile(100));
        Assert.InRange(h.Quantile(50), 1, 5);
    }

    [Fact]
    public void EmptyHistogramQuantileIsNaN() =>
        Assert.True(double.IsNaN(new StatsStore().Histogram("h", HistogramUnit.Unspecified).Quantile(50)));

    [Fact]
    public void ANameAskedInTwoPartsIsTheSameStatAsTheJoinedName()
    {
        var store = new StatsStore();
        var split = store.Counter("cluster.foo.", "upstream_rq_total");

        Assert.Same(split, store.Counter("cluster.foo.upstream_rq_total"));
        Assert.Same(split, store.Counter("cluster.", "foo.upstream_rq_total"));
        Assert.NotSame(split, store.Counter("cluster.foo.", "upstream_rq_totals"));
        Assert.Same(store.Gauge("cluster.foo.", "membership_total", ImportMode.NeverImport), store.Gauge("cluster.foo.membership_total", ImportMode.NeverImport));
        Assert.Same(store.Histogram("cluster.foo.", "upstream_rq_time", HistogramUnit.Milliseconds), store.Histogram("cluster.foo.upstream_rq_time", HistogramUnit.Milliseconds));
        Assert.Equal("cluster.foo.upstream_rq_total", split.Name.Full);
        Assert.Equal("cluster.upstream_rq_total", split.Name.TagExtracted);
        Assert.Equal([new StatTag("envoy.cluster_name", "foo")], split.Name.Tags);
        Assert.Equal(["cluster.foo.upstream_rq_total", "cluster.foo.upstream_rq_totals"], store.Counters().Select(c => c.Name.Full));
    }

    [Fact]
    public void LongNamesSplitDifferentlyAreStillOneStat()
    {
        // Past the length joined on the stack.
        var scope = "cluster." + new string('x', 300) + ".";
        var store = new StatsStore();

        Assert.Same(store.Counter(scope, "upstream_cx_total"), store.Counter(scope[..100], scope[100..] + "upstream_cx_total"));
    }

    [Fact]
    public void CountersSharingCellChunksCountApart()
    {
        // More counters than one chunk of cells holds, each updated a different number of times from
        // several threads: every counter sums exactly its own increments, and a reset is its own.
        var store = new StatsStore();
        var counters = Enumerable.Range(0, 1_200).Select(i => store.Counter("cluster.c" + i + ".", "upstream_rq_total")).ToArray();
        var workers = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            for (var i = 0; i < counters.Length; i++)
            {
                counters[i].Add(i);
                counters[i].Inc();
            }
        })).ToArray();
        foreach (var t in workers)
        {
            t.Start();
        }

        foreach (var t in workers)
        {
            t.Join();
        }

        for (var i = 0; i < counters.Length; i++)
        {
            Assert.Equal(4L * (i + 1), counters[i].Value);
        }

        counters[700].Reset();
        Assert.Equal(0, counters[700].Value);
        Assert.Equal(4L * 700, counters[699].Value);
        Assert.Equal(4L * 702, counters[701].Value);
    }

    [Fact]
    public void AnUnusedHistogramFlushesToAnEmptyIntervalAndAUsedOneToItsSamples()
    {
        var store = new StatsStore();
        var idle = store.Histogram("cluster.a.", "upstream_rq_time", HistogramUnit.Milliseconds);
        var busy = store.Histogram("cluster.b.", "upstream_rq_time", HistogramUnit.Milliseconds);
        busy.Record(3);
        busy.Record(700);

        store.FlushIntervals();

        Assert.Equal(0, idle.IntervalCount);
        Assert.Equal(new long[Histogram.DefaultBuckets.Length + 1], idle.IntervalBucketCounts());
        Assert.True(double.IsNaN(idle.IntervalQuantile(50)));
        Assert.Equal(2, busy.IntervalCount);
        Assert.Equal(1, busy.IntervalBucketCounts()[2]);
        Assert.Equal(1, busy.IntervalBucketCounts()[9]);

        idle.Record(1);
        store.FlushIntervals();

        Assert.Equal(1, idle.IntervalCount);
        Assert.Equal(1, idle.IntervalBucketCounts()[1]);
        Assert.Equal(0, busy.IntervalCount);
    }

    [Fact]
    public void ACdsClustersStatsStayCompact()
    {
        // Deterministic (bytes this thread allocates, not time or heap size): the ~100 stats of a
        // cluster cost ~16 KB to create; with a padded cell array and a name string per stat they
        // were ~50 KB. The bound is generous; it catches a per-stat allocation coming back.
        var store = new StatsStore();
        _ = new Legate.Upstream.ClusterStats(store, "warm-up");
        const int clusters = 200;
        var names = Enumerable.Range(0, clusters).Select(i => "c" + i).ToArray();
        var held = new Legate.Upstream.ClusterStats[clusters];

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < clusters; i++)
        {
            held[i] = new Legate.Upstream.ClusterStats(store, names[i]);
        }

        var perCluster = (GC.GetAllocatedBytesForCurrentThread() - before) / clusters;
        Assert.InRange(perCluster, 1, 28_000);
        Assert.Equal("cluster.c7.upstream_rq_total", held[7].UpstreamRqTotal.Name.Full);
    }

    [Fact]
    public void RemovingAScopeDropsItsStatsAndLeavesTheScopesNestedInItThatAreKnown()
    {
        var store = new StatsStore();
        var held = store.Counter("cluster.a.", "upstream_rq_total");
        held.Inc();
        store.Gauge("cluster.a.circuit_breakers.default.", "cx_open", ImportMode.NeverImport);
        store.Counter("cluster.a.c.total_match_count");
        store.Histogram("cluster.a.", "upstream_rq_time", HistogramUnit.Milliseconds);
        store.Counter("cluster.a.b.", "upstream_rq_total");
        store.Counter("cluster.ab.", "upstream_rq_total");
        store.Counter("cluster_manager.cluster_removed");

        var dropped = store.RemoveScopes("cluster.", new HashSet<string>(["a"], StringComparer.Ordinal), new HashSet<string>(["a.b", "ab"], StringComparer.Ordinal));

        Assert.Equal(4, dropped);
        Assert.Equal(["cluster.a.b.upstream_rq_total", "cluster.ab.upstream_rq_total", "cluster_manager.cluster_removed"], store.Counters().Select(c => c.Name.Full));
        Assert.Empty(store.Gauges());
        Assert.Empty(store.Histograms());
        // The holder may still count, unlisted; the name asked again is a new stat from zero.
        held.Inc();
        Assert.Equal(0, store.Counter("cluster.a.upstream_rq_total").Value);

        // The nested scope goes alone when it is the one removed.
        Assert.Equal(1, store.RemoveScopes("cluster.", new HashSet<string>(["a.b"], StringComparer.Ordinal), new HashSet<string>(["a", "ab"], StringComparer.Ordinal)));
        Assert.Equal(["cluster.a.upstream_rq_total", "cluster.ab.upstream_rq_total", "cluster_manager.cluster_removed"], store.Counters().Select(c => c.Name.Full));
    }
}
