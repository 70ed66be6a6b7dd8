namespace Legate.Stats;

/// <summary>How a gauge's value crosses a hot restart (Envoy's <c>Gauge::ImportMode</c>). Legate has no
/// hot restart; the mode is kept so stats are declared as in Envoy.</summary>
internal enum ImportMode
{
    Uninitialized,
    NeverImport,
    Accumulate,
}

/// <summary>
/// A value that goes up and down (Envoy's <c>Stats::Gauge</c>). Gauges are set as well as added to,
/// which striping cannot do atomically, so one <see cref="Interlocked"/> long; still lock- and allocation-free.
/// </summary>
internal sealed class Gauge : IStat
{
    private long _value;
    private volatile bool _used;

    internal Gauge(StatName name, ImportMode importMode)
    {
        Name = name;
        ImportMode = importMode;
    }

    public StatName Name { get; }

    public ImportMode ImportMode { get; }

    public bool Used => _used;

    public long Value => Volatile.Read(ref _value);

    public void Set(long value)
    {
        Volatile.Write(ref _value, value);
        MarkUsed();
    }

    public void Add(long amount)
    {
        Interlocked.Add(ref _value, amount);
        MarkUsed();
    }

    public void Sub(long amount) => Add(-amount);

    public void Inc() => Add(1);

    public void Dec() => Add(-1);

    private void MarkUsed()
    {
        if (!_used)
        {
            _used = true;
        }
    }
}
