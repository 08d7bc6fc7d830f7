#!/usr/bin/env bash
# bench_convert.sh — end-to-end `kakehashi convert` throughput on a generated SS-MIX2 store: walk,
# read, decode, parse, map, validate (conformance/) and write NDJSON, with the parallel pipeline
# (--jobs). Prints messages/s, wall time, peak RSS (/usr/bin/time -v) and the load average, and
# the issue #4 target (1,000,000 messages in under 60 s, peak RSS under 200 MB) scaled to the
# store size. docs/performance.md, "SS-MIX2 conversion".
#
#   bench/bench_convert.sh [BUILD_DIR] [MESSAGES] [STORE_DIR] [JOBS...]
# BUILD_DIR default "build"; MESSAGES default 100000 (the issue's figure: 1000000, ~8 GB of small
# files); STORE_DIR: an existing store to reuse (kept), otherwise one is generated under
# ${TMPDIR:-/tmp} and removed at the end; JOBS: the --jobs values to run (default: nproc).
set -euo pipefail
build=${1:-build}
messages=${2:-100000}
store=${3:-}
shift $(( $# < 3 ? $# : 3 ))
jobs=("$@")
[[ ${#jobs[@]} -gt 0 ]] || jobs=("$(nproc)")
kakehashi="$build/kakehashi"
gen="$build/bench/gen_ssmix2_store"
[[ -x $kakehashi && -x $gen ]] || { echo "bench_convert.sh: build kakehashi and gen_ssmix2_store first" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "bench_convert.sh: needs /usr/bin/time (Debian package: time)" >&2; exit 2; }

cleanup=""
if [[ -z $store ]]; then
  store=$(mktemp -d "${TMPDIR:-/tmp}/kakehashi_bench_convert.XXXXXX")
  cleanup=$store
  trap '[[ -n $cleanup ]] && rm -rf "$cleanup"' EXIT
  echo "bench_convert.sh: generating $messages messages into $store"
  "$gen" --out "$store" --messages "$messages" > /dev/null
fi

for j in "${jobs[@]}"; do
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  log=$(mktemp)
  /usr/bin/time -v "$kakehashi" convert --jobs "$j" --format ndjson --out /dev/null "$store" \
    2> "$log" || true
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  summary=$(grep -m1 '^kakehashi convert: .* messages' "$log" || true)
  msgs=$(sed -E 's/^kakehashi convert: [0-9]+ files, ([0-9]+) messages.*/\1/' <<< "$summary")
  wall=$(grep 'Elapsed (wall clock)' "$log" | awk '{print $NF}')
  secs=$(awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }' <<< "$wall")
  rss_kb=$(grep 'Maximum resident set size' "$log" | awk '{print $NF}')
  user=$(grep 'User time' "$log" | awk '{print $NF}')
  sys=$(grep 'System time' "$log" | awk '{print $NF}')
  rm -f "$log"
  awk -v m="$msgs" -v s="$secs" -v r="$rss_kb" -v j="$j" -v u="$user" -v y="$sys" \
      -v lb="$load_before" -v la="$load_after" 'BEGIN {
    rate = (s > 0) ? m / s : 0
    full = (rate > 0) ? 1000000 / rate : 0
    time_ok = (rate > 0 && full < 60) ? "met" : "NOT met"
    rss_ok = (r / 1024 < 200) ? "met" : "NOT met"
    printf "bench_convert.sh: --jobs %d: %d messages in %.1f s = %.0f messages/s (user %.1f s, sys %.1f s), peak RSS %.1f MB, load average %s -> %s\n", j, m, s, rate, u, y, r / 1024, lb, la
    printf "bench_convert.sh: 1,000,000 messages at this rate: %.0f s (target < 60 s: %s); peak RSS target < 200 MB: %s\n", full, time_ok, rss_ok
  }'
done
