using System.Buffers;

namespace Legate.Network;

/// <summary>
/// Fixed 4 KiB blocks for the pipes Kestrel's HTTP/2 codec builds over Legate's connections (its
/// per-stream output pipes and its input copy). Without a pool feature Kestrel rents from
/// <see cref="ArrayPool{T}.Shared"/>, whose per-core caches overflow when a loop thread rents and
/// thread-pool workers return hundreds of blocks (every stream in flight holds one), so most
/// rents allocated. The blocks here are their own owners: renting allocates nothing once warm, and
/// at most <see cref="MaxRetained"/> idle blocks are kept.
/// </summary>
internal sealed class BlockMemoryPool : MemoryPool<byte>
{
    public const int BlockSize = 4096;

    /// <summary>Idle blocks kept for reuse (4 MiB); more are left to the GC.</summary>
    internal const int MaxRetained = 1024;

    public static readonly BlockMemoryPool Instance = new();

    private readonly Lock _lock = new();
    private readonly Block[] _idle = new Block[MaxRetained];
    private int _count;

    public override int MaxBufferSize => BlockSize;

    /// <summary>Idle blocks now in the pool (tests).</summary>
    internal int IdleCount => Volatile.Read(ref _count);

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        Block? block = null;
        lock (_lock)
        {
            if (_count > 0)
            {
                block = _idle[--_count];
                _idle[_count] = null!;
            }
        }

        block ??= new Block(this);
        block.OnRented();
        return block;
    }

    protected override void Dispose(bool disposing)
    {
        // Shared for the process' lifetime.
    }

    private void Return(Block block)
    {
        lock (_lock)
        {
            if (_count < MaxRetained)
            {
                _idle[_count++] = block;
            }
        }
    }

    private sealed class Block(BlockMemoryPool pool) : IMemoryOwner<byte>
    {
        private readonly byte[] _array = new byte[BlockSize];
        private int _rented;

        public Memory<byte> Memory => Volatile.Read(ref _rented) != 0
            ? _array
            : throw new ObjectDisposedException(nameof(BlockMemoryPool), "The block was returned to its pool.");

        public void OnRented() => Volatile.Write(ref _rented, 1);

        /// <summary>Returns the block once; a second dispose is ignored rather than handing the block out twice.</summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _rented, 0) == 1)
            {
                pool.Return(this);
            }
        }
    }
}
