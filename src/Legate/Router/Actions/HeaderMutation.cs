using Envoy.Config.Core.V3;
using Google.Protobuf.Collections;
using Legate.Config;
using Legate.Http;
using Legate.Http.Formatter;
using Legate.Http.Http1;

namespace Legate.Router.Actions;

/// <summary>
/// One level's header mutation (route configuration, virtual host, route or weighted cluster):
/// <c>*_headers_to_remove</c> then <c>*_headers_to_add</c>, applied as Envoy's HeaderParser does:
/// removals first; every value is formatted before any is applied; an empty value is skipped
/// unless <c>keep_empty_value</c>; overwrites go in before appends.
/// </summary>
internal sealed class HeaderMutation
{
    private readonly Entry[] _adds;
    private readonly string[] _removes;

    private HeaderMutation(Entry[] adds, string[] removes)
    {
        _adds = adds;
        _removes = removes;
    }

    /// <summary>Null when the level mutates nothing.</summary>
    public static HeaderMutation? Compile(RepeatedField<HeaderValueOption> add, RepeatedField<string> remove, string addPath, string removePath, ConfigErrors errors)
    {
        if (add.Count == 0 && remove.Count == 0)
        {
            return null;
        }

        var adds = new Entry[add.Count];
        for (var i = 0; i < adds.Length; i++)
        {
            var option = add[i];
            var path = FieldPath.Index(addPath, i);
            var key = option.Header?.Key ?? string.Empty;
            if (!IsModifiable(key))
            {
                errors.Add(FieldPath.Field(FieldPath.Field(path, "header"), "key"), $"'{key}': ':'-prefixed or host headers may not be modified");
            }

#pragma warning disable CS0612 // append is deprecated in favour of append_action, and still widely used.
            var action = option.AppendAction;
            if (option.Append is { } append)
            {
                if (action != HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd)
                {
                    errors.Add(FieldPath.Field(path, "append"), "both append and append_action are set; use append_action only");
                }

                action = append ? HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd : HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd;
            }
#pragma warning restore CS0612

            var value = option.Header?.Value ?? string.Empty;
            if (option.Header is { RawValue.Length: > 0 } header)
            {
                value = System.Text.Encoding.Latin1.GetString(header.RawValue.Span);
            }

            SubstitutionFormatter? formatter = null;
            if (value.Contains('%', StringComparison.Ordinal))
            {
                formatter = SubstitutionFormatter.CompileHeaderValue(value, FieldPath.Field(FieldPath.Field(path, "header"), "value"), errors);
            }

            adds[i] = new Entry(key.ToLowerInvariant(), value, formatter, action, option.KeepEmptyValue);
        }

        var removes = new string[remove.Count];
        for (var i = 0; i < removes.Length; i++)
        {
            if (!IsModifiable(remove[i]))
            {
                errors.Add(FieldPath.Index(removePath, i), $"'{remove[i]}': ':'-prefixed or host headers may not be removed");
            }

            removes[i] = remove[i].ToLowerInvariant();
        }

        return new HeaderMutation(adds, removes);
    }

    /// <summary>Envoy's HeaderUtility::isModifiableHeader: not a pseudo-header, not host.</summary>
    private static bool IsModifiable(string name) =>
        name.Length > 0 && name[0] != ':' && !string.Equals(name, "host", StringComparison.OrdinalIgnoreCase);

    /// <summary>Applies this level to <paramref name="headers"/> (request or response) of <paramref name="stream"/>.</summary>
    public void Apply(HttpStream stream, HttpHeaderMap headers)
    {
        foreach (var name in _removes)
        {
            headers.Remove(name);
        }

        if (_adds.Length == 0)
        {
            return;
        }

        // Values first (a later entry must not see an earlier entry's effect), then overwrites, then appends.
        var values = System.Buffers.ArrayPool<string?>.Shared.Rent(_adds.Length);
        for (var i = 0; i < _adds.Length; i++)
        {
            var add = _adds[i];
            var value = add.Formatter is null ? add.Value : add.Formatter.FormatHeaderValue(stream);
            if (value.Length == 0 && !add.KeepEmpty)
            {
                values[i] = null;
                continue;
            }

            var present = headers.IndexOf(add.Name.AsSpan()) >= 0;
            values[i] = null;
            values[i] = add.Action switch
            {
                HeaderValueOption.Types.HeaderAppendAction.AddIfAbsent when present => null,
                HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExists when !present => null,
                _ => value,
            };
        }

        for (var i = 0; i < _adds.Length; i++)
        {
            if (values[i] is { } value && _adds[i].Action is HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExists or HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd)
            {
                headers.Set(_adds[i].Name, value);
            }
        }

        for (var i = 0; i < _adds.Length; i++)
        {
            if (values[i] is { } value && _adds[i].Action is HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd or HeaderValueOption.Types.HeaderAppendAction.AddIfAbsent)
            {
                headers.Add(_adds[i].Name, value);
            }
        }

        Array.Clear(values, 0, _adds.Length);
        System.Buffers.ArrayPool<string?>.Shared.Return(values);
    }

    /// <summary>Applies <paramref name="levels"/> in order.</summary>
    public static void ApplyAll(HeaderMutation[]? levels, HttpStream stream, HttpHeaderMap headers)
    {
        if (levels is null)
        {
            return;
        }

        foreach (var level in levels)
        {
            level.Apply(stream, headers);
        }
    }

    /// <summary>
    /// Orders the levels as Envoy evaluates them (a later level's overwrite wins): by default the most
    /// specific first (weighted cluster, route, virtual host, route configuration) so the least
    /// specific wins; with <c>most_specific_header_mutations_wins</c> the reverse.
    /// </summary>
    public static HeaderMutation[]? Order(bool mostSpecificWins, HeaderMutation? routeConfig, HeaderMutation? virtualHost, HeaderMutation? route, HeaderMutation? weightedCluster = null)
    {
        var list = new List<HeaderMutation>(4);
        if (mostSpecificWins)
        {
            AddIf(list, routeConfig);
            AddIf(list, virtualHost);
            AddIf(list, route);
            AddIf(list, weightedCluster);
        }
        else
        {
            AddIf(list, weightedCluster);
            AddIf(list, route);
            AddIf(list, virtualHost);
            AddIf(list, routeConfig);
        }

        return list.Count == 0 ? null : list.ToArray();

        static void AddIf(List<HeaderMutation> list, HeaderMutation? level)
        {
            if (level is not null)
            {
                list.Add(level);
            }
        }
    }

    private sealed record Entry(string Name, string Value, SubstitutionFormatter? Formatter, HeaderValueOption.Types.HeaderAppendAction Action, bool KeepEmpty);
}
