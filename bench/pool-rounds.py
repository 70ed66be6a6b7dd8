#!/usr/bin/env python3
"""Pools HTTP/1.1 rounds of ../shared/bench's rounds.sh result files.

usage: bench/pool-rounds.py RESULTS_FILE...

For every round that measured both nginx and legate it prints the per-round ratio
Legate / nginx (and HAProxy / nginx when present), then for each ratio the median, the
geometric mean with a 95% interval (normal approximation on the log ratios) and how many
rounds the proxy was ahead. A round compares two windows a minute apart on a VM whose speed
drifts, so only many rounds pooled say much; see docs/performance.md.
"""
import math
import statistics
import sys


def rounds(path):
    by_round = {}
    with open(path) as f:
        for line in f:
            if not line.startswith("BENCH ") or " proto=h1 " not in line:
                continue
            fields = dict(item.split("=", 1) for item in line.split()[1:] if "=" in item)
            by_round.setdefault(fields["round"], {})[fields["name"]] = float(fields["rps"])
    return sorted(by_round.items(), key=lambda kv: int(kv[0]))


def summary(name, ratios):
    if len(ratios) < 2:
        print(f"{name}: {len(ratios)} round(s), not enough to pool")
        return
    logs = [math.log(r) for r in ratios]
    mean = statistics.mean(logs)
    half = 1.96 * statistics.stdev(logs) / math.sqrt(len(logs))
    print(f"{name}: rounds={len(ratios)} median={statistics.median(ratios):.3f} "
          f"geomean={math.exp(mean):.3f} (95% {math.exp(mean - half):.3f}-{math.exp(mean + half):.3f}) "
          f"ahead={sum(r > 1 for r in ratios)}")


def main(paths):
    if not paths:
        sys.exit(__doc__)
    legate, haproxy = [], []
    for path in paths:
        for number, rps in rounds(path):
            if "nginx" not in rps or "legate" not in rps:
                continue
            ratio = rps["legate"] / rps["nginx"]
            legate.append(ratio)
            line = f"{path} round {number}: nginx {rps['nginx']:.0f} legate {rps['legate']:.0f} = {ratio:.3f}"
            if "haproxy" in rps:
                haproxy.append(rps["haproxy"] / rps["nginx"])
                line += f", haproxy = {haproxy[-1]:.3f}"
            print(line)
    summary("legate/nginx", legate)
    summary("haproxy/nginx", haproxy)


if __name__ == "__main__":
    main(sys.argv[1:])
