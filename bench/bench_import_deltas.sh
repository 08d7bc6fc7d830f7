#!/usr/bin/env bash
# bench_import_deltas.sh — `kakehashi import` of the N-th daily delta root into a database that
# holds a full export and the N-1 delta roots before it (docs/performance.md, "Import: many delta
# roots"; decision 0026). Prints, per N, the CPU time (user + sys) and peak RSS of importing the
# N-th delta (/usr/bin/time -v), and the load average.
#
#   bench/bench_import_deltas.sh KAKEHASHI GEN WORK_DIR N...
# KAKEHASHI: the binary to measure; GEN: bench/gen_ssmix2_store; WORK_DIR: created, holds the
# generated roots and databases (removed at the end). Roots: a pool of 2,470 generated patients
# (20,000 messages, seed 1) and 247 more versions of the first 247 (2,000 messages, seed 2). The
# full export is patients 1-247 of the pool; delta d holds 20 new patients of the pool
# (248 + 20 (d-1) onwards) and 5 of the full export's patients (5 (d-1) + 1 onwards) in their
# seed-2 version, so each delta shares 5 patient folders with the full export and none with the
# other deltas. Files are hard links into the generated stores.
set -euo pipefail
kakehashi=$1
gen=$2
work=$3
shift 3
[[ $# -gt 0 ]] || { echo "usage: bench_import_deltas.sh KAKEHASHI GEN WORK_DIR N..." >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "bench_import_deltas.sh: needs /usr/bin/time" >&2; exit 2; }
max=0
for n in "$@"; do (( n > max )) && max=$n; done
(( max <= 49 )) || { echo "bench_import_deltas.sh: N at most 49" >&2; exit 2; }
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
"$gen" --out "$work/pool" --messages 20000 --seed 1 > /dev/null
"$gen" --out "$work/newer" --messages 2000 --seed 2 > /dev/null
folder() {  # patient number -> ID[0:3]/ID[3:6]/ID
  local id
  id=$(printf '%010d' "$1")
  echo "${id:0:3}/${id:3:3}/$id"
}
link() {  # store patient-number root
  local f
  f=$(folder "$2")
  mkdir -p "$3/$(dirname "$f")"
  cp -al "$1/$f" "$3/$f"
}
for p in $(seq 1 247); do link "$work/pool" "$p" "$work/full"; done
for d in $(seq 1 "$max"); do
  for p in $(seq $((248 + 20 * (d - 1))) $((247 + 20 * d))); do link "$work/pool" "$p" "$work/delta$d"; done
  for p in $(seq $((5 * (d - 1) + 1)) $((5 * d))); do link "$work/newer" "$p" "$work/delta$d"; done
done
"$kakehashi" import ssmix2 "$work/full" --db "sqlite:$work/base.sqlite" --jobs 2 > /dev/null 2>&1
imported=0
for n in $(printf '%s\n' "$@" | sort -n); do
  while (( imported < n - 1 )); do
    imported=$((imported + 1))
    "$kakehashi" import ssmix2 "$work/delta$imported" --db "sqlite:$work/base.sqlite" --jobs 2 \
      > /dev/null 2>&1
  done
  rm -f "$work/run.sqlite"*
  cp "$work/base.sqlite" "$work/run.sqlite"
  /usr/bin/time -v "$kakehashi" import ssmix2 "$work/delta$n" --db "sqlite:$work/run.sqlite" \
    --jobs 2 > /dev/null 2> "$work/time.txt"
  user=$(awk -F': ' '/User time/ {print $2}' "$work/time.txt")
  sys=$(awk -F': ' '/System time/ {print $2}' "$work/time.txt")
  rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$work/time.txt")
  printf 'delta N=%d: cpu %.2f s (user %s + sys %s), peak RSS %d MB, load %s\n' "$n" \
    "$(echo "$user + $sys" | bc)" "$user" "$sys" $((rss / 1024)) "$(cut -d' ' -f1-3 /proc/loadavg)"
done
