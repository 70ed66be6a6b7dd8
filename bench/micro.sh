#!/usr/bin/env bash
# Route-matching and load-balancer micro-benchmarks (ns and bytes per operation).
# usage: bench/micro.sh     (pin it with: taskset -c 1 bench/micro.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dotnet run -c Release --project "$here/bench/Legate.Bench" -nologo
