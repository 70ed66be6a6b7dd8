#!/usr/bin/env bash
# Builds Legate precompiled (ReadyToRun: at full speed ~10 s after start instead of ~25 s of JIT
# warm-up, see docs/performance.md) and runs it. Arguments go to legate; without any it serves
# its built-in demo config. Falls back to a plain `dotnet run` when the ReadyToRun build is not
# possible here (e.g. the runtime pack cannot be restored).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${LEGATE_OUT:-$ROOT/artifacts/legate}
case "$(uname -m)" in
  x86_64) RID=linux-x64 ;;
  aarch64 | arm64) RID=linux-arm64 ;;
  *) RID= ;;
esac

# Tiered PGO profiles from a method's first call instead of only once it is hot, so code that runs
# once per connection finishes tiering while traffic warms up rather than later on the proxy's
# core (the p99 tail in docs/performance.md, "JIT tiering and the tail"). The runtime reads this
# only from the environment; the rest of the tiering settings are in legate.runtimeconfig.json.
export DOTNET_TieredPGO_InstrumentOnlyHotCode=${DOTNET_TieredPGO_InstrumentOnlyHotCode:-0}

if [[ -n "$RID" ]] && dotnet publish "$ROOT/src/Legate.Cli" -c Release -r "$RID" --self-contained false \
    -p:PublishReadyToRun=true -o "$OUT" -nologo -v q >&2; then
  exec dotnet "$OUT/legate.dll" "$@"
fi

echo "run.sh: ReadyToRun build not possible here; starting the JIT build instead" >&2
exec dotnet run --project "$ROOT/src/Legate.Cli" -c Release -- "$@"
