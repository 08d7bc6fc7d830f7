#!/usr/bin/env bash
# make bench: run every benchmark executable under <build>/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
for b in "$build"/bench/bench_*; do
  [[ -x $b ]] || continue
  echo "== $(basename "$b")"
  "$b"
done
# Script benchmarks (server + load generator + peer): the gateway (docs/performance.md, Gateway).
echo "== bench_gateway.sh"
bench/bench_gateway.sh "$build"
# End-to-end `kakehashi convert` on a generated 100,000-message SS-MIX2 store (docs/performance.md,
# SS-MIX2 conversion; the issue's 1,000,000-message figure: bench/bench_convert.sh BUILD 1000000).
echo "== bench_convert.sh"
bench/bench_convert.sh "$build" 100000
