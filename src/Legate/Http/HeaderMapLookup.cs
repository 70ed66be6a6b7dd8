using Legate.Http.Http1;
using Legate.Router.Matching;

namespace Legate.Http;

/// <summary>Route header matchers read a request's <see cref="HttpHeaderMap"/> through this.</summary>
internal sealed class HeaderMapLookup(HttpHeaderMap headers) : IHeaderLookup
{
    public int Count(string name)
    {
        var count = 0;
        for (var i = headers.IndexOf(name.AsSpan()); i >= 0; i = headers.IndexOf(name.AsSpan(), i + 1))
        {
            count++;
        }

        return count;
    }

    public string Get(string name, int index)
    {
        for (var i = headers.IndexOf(name.AsSpan()); i >= 0; i = headers.IndexOf(name.AsSpan(), i + 1))
        {
            if (index-- == 0)
            {
                return headers.GetValue(i);
            }
        }

        return string.Empty;
    }
}
