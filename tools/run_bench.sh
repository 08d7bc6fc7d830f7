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
