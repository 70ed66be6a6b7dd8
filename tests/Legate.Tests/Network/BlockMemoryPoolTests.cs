using Legate.Network;

namespace Legate.Tests.Network;

/// <summary>The 4 KiB block pool Kestrel's HTTP/2 pipes rent from on Legate's connections.</summary>
public sealed class BlockMemoryPoolTests
{
    [Fact]
    public void AReturnedBlockIsRentedAgainAndADoubleDisposeDoesNotHandItOutTwice()
    {
        var pool = new BlockMemoryPool();
        var first = pool.Rent(100);
        Assert.Equal(BlockMemoryPool.BlockSize, first.Memory.Length);
        first.Memory.Span[0] = 42;
        first.Dispose();
        first.Dispose();
        Assert.Equal(1, pool.IdleCount);
        Assert.Throws<ObjectDisposedException>(() => first.Memory);

        var second = pool.Rent();
        Assert.Same(first, second);
        Assert.Equal(0, pool.IdleCount);
        var third = pool.Rent();
        Assert.NotSame(second, third);
    }

    [Fact]
    public void MoreThanABlockIsRefusedAndIdleBlocksAreCapped()
    {
        var pool = new BlockMemoryPool();
        Assert.Equal(BlockMemoryPool.BlockSize, pool.MaxBufferSize);
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(BlockMemoryPool.BlockSize + 1));

        var blocks = Enumerable.Range(0, BlockMemoryPool.MaxRetained + 10).Select(_ => pool.Rent()).ToList();
        blocks.ForEach(b => b.Dispose());
        Assert.Equal(BlockMemoryPool.MaxRetained, pool.IdleCount);
    }
}
