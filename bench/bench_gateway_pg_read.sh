#!/usr/bin/env bash
# bench/bench_gateway_pg_read.sh [BUILD_DIR] [N_PATIENTS] [ROUNDS]
#
# Read by id on PostgreSQL: `kakehashi serve --db postgresql://...` under wrk (-t2 -c50 -d10s, GET
# /fhir/Patient/pK for random K) against a throwaway PostgreSQL 15 cluster
# (tools/pg_test_server.sh: fsync=off, synchronous_commit=off), loaded once with N (default
# 20,000) synthetic patients (bench/gen_fhir_patients.py). There is no read cache on PostgreSQL:
# every read is a round trip to the cluster on a reader thread (decision 0027).
# BASE_KK=path/to/another/kakehashi alternates that binary (`base`) with BUILD_DIR's (`new`) on
# the same database, ROUNDS (default 3) times each (before/after in the same run).
# Printed per run: req/s, p50 and p99 latency (ms), server CPU per request (user + sys of the
# kakehashi process, /proc) and cluster CPU per request (the postmaster's live children and its
# reaped ones), with the 1-minute load average before the run: on a shared machine the CPU
# figures are the comparable ones.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
n=${2:-20000}
rounds=${3:-3}
duration=${BENCH_DURATION:-10s}
kk="$build/kakehashi"
[[ -x $kk ]] || { echo "bench_gateway_pg_read: build $kk first" >&2; exit 2; }
for tool in wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "bench_gateway_pg_read: $tool is required (tools/setup.sh)" >&2; exit 2; }
done

state=$(mktemp -d /tmp/kakehashi-bench-pgread.XXXXXX)
kpid=
cleanup() {
  [[ -n $kpid ]] && { kill "$kpid" 2>/dev/null || true; wait "$kpid" 2>/dev/null || true; }
  tools/pg_test_server.sh stop "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
url=$(tools/pg_test_server.sh start "$state")
datadir="$(cat "$state/datadir")/data"
postmaster=$(head -1 "$datadir/postmaster.pid")

python3 bench/gen_fhir_patients.py "$n" "$state/patients.ndjson"
cat >"$state/read.lua" <<LUA
math.randomseed(os.time())
request = function() return wrk.format("GET", "/fhir/Patient/p" .. math.random(0, $n - 1)) end
LUA

bench_name=bench_gateway_pg_read
# shellcheck source=bench/gateway_lib.sh
source bench/gateway_lib.sh
hz=$(getconf CLK_TCK)
kk_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ms() {  # wrk's "1.23ms" / "456.00us" / "1.02s" -> ms
  awk -v v="$1" 'BEGIN {if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}'
}

serve() {  # binary [serve args...]: starts it on a free port, sets port and kpid
  local bin=$1
  shift
  port=$(free_port)
  "$bin" serve --port "$port" --db "$url" --auth off "$@" >"$state/kk.log" 2>&1 &
  kpid=$!
  wait_up "$port"
}
stop_serve() {
  kill -TERM "$kpid"
  wait "$kpid" 2>/dev/null || true
  kpid=
}

# Load once (not measured); every run below serves the same database.
serve "$kk" --load "$state/patients.ndjson"
stop_serve

printf "%-6s %9s %8s %8s %14s %15s %6s\n" "binary" "req/s" "p50 ms" "p99 ms" "server us/req" "cluster us/req" "load"
binaries=(new)
[[ -n ${BASE_KK:-} ]] && binaries=(base new)
for ((r = 1; r <= rounds; ++r)); do
  for which in "${binaries[@]}"; do
    bin=$kk
    [[ $which == base ]] && bin=$BASE_KK
    serve "$bin"
    # A short warm-up pass (connections opened, the cluster's cache filled), not measured.
    wrk -t2 -c50 -d2s -s "$state/read.lua" "http://127.0.0.1:$port" >/dev/null 2>&1
    load=$(cut -d' ' -f1 /proc/loadavg)
    k0=$(kk_ticks "$kpid")
    c0=$(cluster_ticks)
    out=$(wrk -t2 -c50 -d"$duration" --latency -s "$state/read.lua" "http://127.0.0.1:$port" 2>&1)
    k1=$(kk_ticks "$kpid")
    c1=$(cluster_ticks)
    stop_serve
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
    p99=$(ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
    non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    [[ -n $non2xx ]] && echo "bench_gateway_pg_read: $non2xx non-2xx answers" >&2
    per() { awk -v a="$1" -v b="$2" -v n="$reqs" -v hz="$hz" 'BEGIN {if (n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else print "?"}'; }
    printf "%-6s %9s %8s %8s %14s %15s %6s\n" "$which" "$rps" "$p50" "$p99" "$(per "$k0" "$k1")" \
      "$(per "$c0" "$c1")" "$load"
  done
done
echo "bench_gateway_pg_read: $n patients, wrk -t2 -c50 -d$duration, $(nproc) cores; load now $(cut -d' ' -f1-3 /proc/loadavg)"
