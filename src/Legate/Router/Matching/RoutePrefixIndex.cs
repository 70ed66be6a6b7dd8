using System.Buffers;

namespace Legate.Router.Matching;

/// <summary>
/// Narrows a virtual host's routes to the candidates a path can match, without losing Envoy's
/// first-match-wins order. Every prefix, path and path_separated_prefix route needs the path to
/// start with its literal, so those routes hang off a character trie at the node where their
/// literal ends (case-insensitive ones in a second trie keyed by ASCII-lowered characters).
/// Walking the path through both tries visits exactly the routes whose literal is a prefix of
/// the path; a safe_regex route is indexed by the literal text its pattern must start with, and
/// routes without a literal (connect_matcher, regexes such as <c>.*</c>) are always candidates. Each
/// node's route list is sorted by route position, so a k-way merge of the visited lists yields
/// the candidates in configuration order and matching stops at the first full match.
/// </summary>
internal sealed class RoutePrefixIndex
{
    private readonly Node _sensitive;
    private readonly Node _insensitive;
    private readonly int[] _always;

    public RoutePrefixIndex(IReadOnlyList<CompiledRoute> routes)
    {
        var sensitive = new Builder();
        var insensitive = new Builder();
        var always = new List<int>();
        for (var i = 0; i < routes.Count; i++)
        {
            var key = routes[i].IndexKey;
            if (key is null)
            {
                always.Add(i);
            }
            else if (routes[i].IndexCaseSensitive)
            {
                sensitive.Add(key, i);
            }
            else
            {
                insensitive.Add(AsciiCase.Lower(key), i);
            }
        }

        _sensitive = sensitive.Freeze();
        _insensitive = insensitive.Freeze();
        _always = always.ToArray();
    }

    /// <summary>
    /// Calls <paramref name="visit"/> with the candidate positions (indices into the route list
    /// given to the constructor) in increasing order until it returns true; returns that position or -1.
    /// </summary>
    public int FirstMatch<TState>(ReadOnlySpan<char> path, ref TState state, Visitor<TState> visit)
    {
        // At most one list per trie node on each walk, plus the always list.
        var lists = ArrayPool<int[]>.Shared.Rent((2 * (path.Length + 1)) + 1);
        var cursors = ArrayPool<int>.Shared.Rent(lists.Length);
        try
        {
            var count = 0;
            if (_always.Length > 0)
            {
                lists[count++] = _always;
            }

            count = Collect(_sensitive, path, false, lists, count);
            count = Collect(_insensitive, path, true, lists, count);
            Array.Clear(cursors, 0, count);
            while (true)
            {
                var best = -1;
                var bestValue = int.MaxValue;
                for (var i = 0; i < count; i++)
                {
                    var list = lists[i];
                    if (cursors[i] < list.Length && list[cursors[i]] < bestValue)
                    {
                        best = i;
                        bestValue = list[cursors[i]];
                    }
                }

                if (best < 0)
                {
                    return -1;
                }

                cursors[best]++;
                if (visit(bestValue, ref state))
                {
                    return bestValue;
                }
            }
        }
        finally
        {
            ArrayPool<int[]>.Shared.Return(lists, clearArray: true);
            ArrayPool<int>.Shared.Return(cursors);
        }
    }

    public delegate bool Visitor<TState>(int position, ref TState state);

    private static int Collect(Node node, ReadOnlySpan<char> path, bool lower, int[][] lists, int count)
    {
        var current = node;
        for (var i = 0; ; i++)
        {
            if (current.Routes.Length > 0)
            {
                lists[count++] = current.Routes;
            }

            if (i == path.Length)
            {
                return count;
            }

            var next = current.Child(lower ? AsciiCase.Lower(path[i]) : path[i]);
            if (next is null)
            {
                return count;
            }

            current = next;
        }
    }

    private sealed class Node
    {
        public Node(char[] keys, Node[] children, int[] routes)
        {
            Keys = keys;
            Children = children;
            Routes = routes;
        }

        /// <summary>Sorted, for binary search.</summary>
        public char[] Keys { get; }

        public Node[] Children { get; }

        /// <summary>Positions of the routes whose literal ends here, ascending.</summary>
        public int[] Routes { get; }

        public Node? Child(char c)
        {
            var i = Array.BinarySearch(Keys, c);
            return i >= 0 ? Children[i] : null;
        }
    }

    /// <summary>The mutable trie used while building; frozen into compact sorted arrays.</summary>
    private sealed class Builder
    {
        private readonly SortedDictionary<char, Builder> _children = new();
        private readonly List<int> _routes = new();

        public void Add(string key, int position)
        {
            var node = this;
            foreach (var c in key)
            {
                if (!node._children.TryGetValue(c, out var child))
                {
                    child = new Builder();
                    node._children.Add(c, child);
                }

                node = child;
            }

            // Positions arrive in increasing order, so the list stays sorted.
            node._routes.Add(position);
        }

        public Node Freeze()
        {
            var keys = new char[_children.Count];
            var children = new Node[_children.Count];
            var i = 0;
            foreach (var (c, child) in _children)
            {
                keys[i] = c;
                children[i] = child.Freeze();
                i++;
            }

            return new Node(keys, children, _routes.ToArray());
        }
    }
}
