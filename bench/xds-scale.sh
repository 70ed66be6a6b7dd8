#!/usr/bin/env bash
# xDS at scale: 1,000 EDS clusters with 10,000 endpoints over ADS from the bundled management
# server to an in-process Legate (time to LIVE, one-endpoint update latency, memory), in state of
# the world and in Delta. BENCH_LOG=debug shows both sides' logs on stderr.
# usage: bench/xds-scale.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dotnet build -c Release "$here/bench/Legate.Bench" -nologo -v q >/dev/null
dll="$here/bench/Legate.Bench/bin/Release/net10.0/Legate.Bench.dll"
dotnet "$dll" xds
dotnet "$dll" xds delta
