#!/usr/bin/env bash
# xDS at scale: 1,000 EDS clusters with 10,000 endpoints over ADS from the bundled management
# server to an in-process Legate (time to LIVE, two warm pushes of 1,000 other clusters, the
# one-endpoint update latency, memory), in state of the world and in Delta. Published
# ReadyToRun, as scripts/run.sh ships the legate binary.
# BENCH_LOG=debug shows both sides' logs on stderr; BENCH_PUSHES=N changes the number of warm
# pushes; BENCH_ALLOC=1 prints the sampled allocations of each warm push by type; BENCH_ROUNDS=N
# changes the 7 + 7 one-endpoint rounds (the first 7 reported apart); BENCH_THREADS=1 prints the
# on-CPU time per thread name during those rounds.
# usage: bench/xds-scale.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-/tmp/xds-bench-r2r}
case "$(uname -m)" in
  aarch64 | arm64) rid=linux-arm64 ;;
  *) rid=linux-x64 ;;
esac
dotnet publish "$here/bench/Legate.Bench" -c Release -r "$rid" --self-contained false \
  -p:PublishReadyToRun=true -o "$out" -nologo -v q >/dev/null
for mode in "" delta; do
  /usr/bin/time -f "process: %U s user, %S s sys, %e s wall" dotnet "$out/Legate.Bench.dll" xds $mode
done
