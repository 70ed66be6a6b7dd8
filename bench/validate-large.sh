#!/usr/bin/env bash
# Times `legate --mode validate` on a generated bootstrap with N clusters and N routes:
# the whole process (start-up included) and the in-process figure legate logs at debug level
# (read, convert, every check, compile). Builds plain (JIT) and ReadyToRun binaries.
# usage: bench/validate-large.sh [N]   (default 1000)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

dotnet build "$here/src/Legate.Cli" -c Release -v q -nologo >/dev/null
dotnet publish "$here/src/Legate.Cli" -c Release -r linux-x64 --self-contained false \
  -p:PublishReadyToRun=true -o "$work/r2r" -v q -nologo >/dev/null
cfg="$work/large.yaml"
python3 "$here/bench/gen-large-bootstrap.py" "$n" > "$cfg"
echo "config: $n clusters, $n routes, $(wc -c < "$cfg") bytes"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(dotnet --version) SDK"

for variant in jit r2r; do
  if [ "$variant" = jit ]; then legate="$here/src/Legate.Cli/bin/Release/net10.0/legate"; else legate="$work/r2r/legate"; fi
  "$legate" --mode validate -c "$cfg" >/dev/null 2>&1 || { "$legate" --mode validate -c "$cfg" | tail -5; exit 1; }
  best_total=""; best_load=""
  for i in 1 2 3 4 5; do
    start=$(date +%s%N)
    line=$("$legate" --mode validate -c "$cfg" -l debug 2>&1 | grep -o 'compiled in [0-9]* ms' | grep -o '[0-9]*')
    total=$(( ($(date +%s%N) - start) / 1000000 ))
    if [ -z "$best_total" ] || [ "$total" -lt "$best_total" ]; then best_total=$total; fi
    if [ -z "$best_load" ] || [ "$line" -lt "$best_load" ]; then best_load=$line; fi
  done
  echo "$variant: whole process best of 5 = ${best_total} ms; load+check+compile in process = ${best_load} ms"
done
