#!/usr/bin/env bash
# Runs `legate --mode validate` on every bootstrap of Envoy's official sandboxes (the corpus in
# ../shared/compat/envoy-examples, or the folder given as $1) and prints one table row per file:
#   OK                              the file validates
#   unsupported: a, b               extensions Legate does not implement yet (or contrib types
#                                   missing from its API snapshot)
#   missing file <path>             a file the config references that the corpus does not ship
#   ERROR: <message>                anything else: a Legate bug or a real config error
# Exits 1 when any file ends in ERROR, so that tests can hold the line.
#
# usage: scripts/compat.sh [corpus-dir]
#   LEGATE="/path/to/legate" (or "dotnet /path/to/legate.dll") uses a built binary instead of building one.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
corpus=${1:-$here/../shared/compat/envoy-examples}
if [ ! -f "$corpus/bootstraps.txt" ]; then
  echo "compat: no corpus at $corpus (expected bootstraps.txt)" >&2
  exit 2
fi

legate=${LEGATE:-}
if [ -z "$legate" ]; then
  dotnet build "$here/src/Legate.Cli" -c Release -v q -nologo >/dev/null || { echo "compat: build failed" >&2; exit 2; }
  legate="$here/src/Legate.Cli/bin/Release/net10.0/legate"
fi

validate_one() {
  local file=$1 out rc
  # $legate may be a command with arguments ("dotnet legate.dll"): split it on purpose.
  out=$($legate --mode validate -c "$corpus/$file" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then
    printf '| %s | OK |\n' "$file"
    return
  fi
  local unsupported missing other
  unsupported=$( { grep -oE '"[^"]+" \(type\.googleapis\.com/[^)]*\) is not supported yet' <<<"$out" | sed -E 's/^"([^"]+)".*/\1/';
                   grep -oE 'unknown type URL "[^"]+"' <<<"$out" | sed -E 's/.*\/([^/"]+)"$/\1 (not in the API snapshot)/'; } | sort -u | paste -sd, - | sed 's/,/, /g')
  missing=$(grep -oE 'missing file [^ ]+' <<<"$out" | sort -u | paste -sd, - | sed 's/,/, /g')
  other=$(grep -E ': ' <<<"$out" | grep -vE 'is not supported yet|unknown type URL|missing file|^warning: |configuration errors:$' | head -1)
  local row=""
  [ -n "$unsupported" ] && row="unsupported: $unsupported"
  [ -n "$missing" ] && row="${row:+$row; }$missing"
  if [ -n "$other" ] || [ -z "$row" ]; then
    row="ERROR: ${other:-$(head -1 <<<"$out")}${row:+ (also $row)}"
  fi
  printf '| %s | %s |\n' "$file" "$row"
}
export -f validate_one
export legate corpus

echo "| config | result |"
echo "| --- | --- |"
rows=$(grep -vE '^\s*(#|$)' "$corpus/bootstraps.txt" | xargs -P "$(nproc)" -I{} bash -c 'validate_one "$@"' _ {} | sort)
echo "$rows"
ok=$(grep -c '| OK |' <<<"$rows")
errors=$(grep -c '| ERROR: ' <<<"$rows")
total=$(wc -l <<<"$rows")
echo
echo "compat: $total configs: $ok OK, $errors ERROR, $((total - ok - errors)) unsupported or missing files"
[ "$errors" -eq 0 ]
