#!/usr/bin/env bash
# bench_import.sh — `kakehashi import ssmix2` throughput on a generated SS-MIX2 store: walk, convert,
# validate (conformance/), index and write into a fresh database with the checkpoints. Prints
# messages/s by wall clock and per CPU second (user + sys, /usr/bin/time -v; the steadier figure on
# a shared machine), peak RSS and the load average, then re-imports once (every patient skipped).
# docs/performance.md, "SS-MIX2 import into the gateway store".
#
#   bench/bench_import.sh [BUILD_DIR] [MESSAGES] [STORE_DIR] [DB...]
# BUILD_DIR default "build"; MESSAGES default 5000; STORE_DIR: an existing store to reuse (kept),
# otherwise one is generated under ${TMPDIR:-/tmp} and removed at the end; DB: "sqlite" (default:
# a fresh file in the temp dir) and/or a postgresql:// URL (an empty database; e.g. from
# tools/pg_test_server.sh). Extra import options: $IMPORT_ARGS (e.g. "--jobs 1 --chunk 1000").
# KAKEHASHI=path runs another binary (A/B of two builds on the same store).
set -euo pipefail
build=${1:-build}
messages=${2:-5000}
store=${3:-}
shift $(( $# < 3 ? $# : 3 ))
dbs=("$@")
[[ ${#dbs[@]} -gt 0 ]] || dbs=(sqlite)
kakehashi=${KAKEHASHI:-$build/kakehashi}
gen="$build/bench/gen_ssmix2_store"
[[ -x $kakehashi && -x $gen ]] || { echo "bench_import.sh: build kakehashi and gen_ssmix2_store first" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "bench_import.sh: needs /usr/bin/time (Debian package: time)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kakehashi_bench_import.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [[ -z $store ]]; then
  store=$work/store
  echo "bench_import.sh: generating $messages messages into $store"
  "$gen" --out "$store" --messages "$messages" > /dev/null
fi

run() {  # run LABEL DB
  local label=$1 db=$2 log load_before load_after
  log=$(mktemp)
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  # shellcheck disable=SC2086
  /usr/bin/time -v "$kakehashi" import ssmix2 "$store" --db "$db" --no-unused \
    --rejects "$work/rejects" ${IMPORT_ARGS:-} 2> "$log" || true
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  local summary msgs units skipped jobs wall secs user sys rss
  summary=$(grep -m1 '^kakehashi import: .* units imported' "$log" || true)
  [[ -n $summary ]] || { echo "bench_import.sh: import failed:" >&2; cat "$log" >&2; exit 1; }
  msgs=$(sed -E 's/.*; [0-9]+ files, ([0-9]+) messages.*/\1/' <<< "$summary")
  units=$(sed -E 's/^kakehashi import: ([0-9]+) units.*/\1/' <<< "$summary")
  skipped=$(sed -E 's/.*, ([0-9]+) already done.*/\1/' <<< "$summary")
  jobs=$(sed -E 's/.* ([0-9]+) jobs\).*/\1/;t;s/.*/1/' <<< "$summary")
  wall=$(grep 'Elapsed (wall clock)' "$log" | awk '{print $NF}')
  secs=$(awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }' <<< "$wall")
  user=$(grep 'User time' "$log" | awk '{print $NF}')
  sys=$(grep 'System time' "$log" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$log" | awk '{print $NF}')
  rm -f "$log"
  awk -v l="$label" -v m="$msgs" -v s="$secs" -v u="$user" -v y="$sys" -v r="$rss" -v n="$units" \
      -v k="$skipped" -v j="$jobs" -v lb="$load_before" -v la="$load_after" 'BEGIN {
    cpu = u + y
    printf "bench_import.sh: %s: %d units (%d skipped), %d messages in %.1f s = %.0f msg/s wall; CPU %.1f s (user %.1f, sys %.1f) = %.0f msg/s per CPU s; %d jobs; peak RSS %.1f MB; load average %s -> %s\n", l, n, k, m, s, (s > 0 ? m / s : 0), cpu, u, y, (cpu > 0 ? m / cpu : 0), j, r / 1024, lb, la
  }'
}

for db in "${dbs[@]}"; do
  if [[ $db == sqlite ]]; then
    db="sqlite:$work/import.sqlite"
    rm -f "$work"/import.sqlite*
    run "sqlite, fresh" "$db"
    run "sqlite, again" "$db"
  else
    run "postgresql, fresh" "$db"
    run "postgresql, again" "$db"
  fi
done
