#!/usr/bin/env bash
# bench/bench_gateway.sh [BUILD_DIR] [N_PATIENTS]
#
# The gateway under wrk (-t2 -c50 -d10s, server and load generator share this machine) against
# the peer @medplum/fhir-router on its in-memory repository (tools/oracle/bench_gateway_peer.mjs),
# both loaded with the same N synthetic patients (bench/gen_fhir_patients.py, default 100,000):
#   read by id (the server's read cache starts empty: the first pass over random ids is mostly
#   cache fills, the headline figure of issue #6), read by id again over the same ids (warm
#   cache), search by name, search by identifier, transaction Bundles of 100 resources, idle RSS
#   after loading and RSS after the read runs. Prints a table with kakehashi/peer ratios
#   (docs/performance.md).
# KK_SERVE_ARGS="--threads 1" adds options to `kakehashi serve` (A/B of server settings);
# BENCH_PEER=0 skips the peer (A/B runs of kakehashi alone; its columns print 0 / ?).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
n=${2:-100000}
duration=${BENCH_DURATION:-10s}
kk="$build/kakehashi"
for tool in wrk node python3 curl; do
  command -v "$tool" >/dev/null || { echo "bench_gateway: $tool is required (tools/setup.sh)" >&2; exit 2; }
done
[[ -x $kk ]] || { echo "bench_gateway: build $kk first" >&2; exit 2; }
[[ -d tools/oracle/node_modules/@medplum/fhir-router ]] || { echo "bench_gateway: run tools/setup.sh (npm oracles)" >&2; exit 2; }

bench_name=bench_gateway
# shellcheck source=bench/gateway_lib.sh
source bench/gateway_lib.sh
bench_tmp kakehashi-bench-gw

python3 bench/gen_fhir_patients.py "$n" "$tmp/patients.ndjson"

# wrk scripts: random ids/names/identifiers; a transaction of 100 Observations per request.
cat >"$tmp/read.lua" <<LUA
math.randomseed(os.time())
request = function() return wrk.format("GET", "/fhir/Patient/p" .. math.random(0, $n - 1)) end
LUA
cat >"$tmp/name.lua" <<'LUA'
math.randomseed(os.time())
local names = {"%E4%BD%90%E8%97%A4", "%E9%88%B4%E6%9C%A8", "%E9%AB%98%E6%A9%8B", "%E7%94%B0%E4%B8%AD",
  "%E5%B1%B1%E7%94%B0", "%E3%82%B5%E3%83%88%E3%82%A6", "%E3%82%B9%E3%82%BA%E3%82%AD", "%E6%9E%97"}
request = function()
  return wrk.format("GET", "/fhir/Patient?name=" .. names[math.random(1, #names)] .. "&_count=10")
end
LUA
cat >"$tmp/identifier.lua" <<LUA
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format(
    "/fhir/Patient?identifier=urn:oid:1.2.392.100495.20.3.51.11311234567%%7C%08d", math.random(0, $n - 1)))
end
LUA
python3 bench/gen_tx_bundle.py 100 "$tmp/tx.json"
cat >"$tmp/tx.lua" <<LUA
local f = io.open("$tmp/tx.json", "rb")
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = "/fhir"
wrk.body = body
wrk.headers["Content-Type"] = "application/fhir+json"
LUA

rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
# run_wrk (gateway_lib.sh): the 1-minute load average is taken right before each run and printed
# with its figure; the server CPU per request is the figure to compare on a loaded machine.

declare -A kk_r peer_r
kk_rss_read="?"
measure() {  # name port -> fills array named by $3; $4 = server pid
  local -n res=$3
  res[read]=$(run_wrk "http://127.0.0.1:$2" "$4" "$tmp/read.lua")
  res[read_warm]=$(run_wrk "http://127.0.0.1:$2" "$4" "$tmp/read.lua")
  if [[ $1 == kakehashi ]]; then kk_rss_read=$(rss_mb "$4"); fi
  res[name]=$(run_wrk "http://127.0.0.1:$2" "$4" "$tmp/name.lua")
  res[identifier]=$(run_wrk "http://127.0.0.1:$2" "$4" "$tmp/identifier.lua")
  res[tx]=$(run_wrk "http://127.0.0.1:$2" "$4" "$tmp/tx.lua")
}

# --- kakehashi (SQLite, default io threads = cores)
port=$(free_port)
start=$(date +%s.%N)
read -r -a serve_extra <<<"${KK_SERVE_ARGS:-}"
"$kk" serve --port "$port" --db "sqlite:$tmp/bench.sqlite" --load "$tmp/patients.ndjson" --auth off \
  "${serve_extra[@]}" >"$tmp/kk.log" 2>&1 &
kpid=$!
pids+=("$kpid")
wait_up "$port"
load_s=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN {printf "%.1f", a - b}')
sleep 3
kk_rss=$(rss_mb "$kpid")
kk_rss_load=$(loadavg)
measure kakehashi "$port" kk_r "$kpid"
kk_rss_after=$(rss_mb "$kpid")
kill -TERM "$kpid"; wait "$kpid" 2>/dev/null || true

# --- peer
if [[ ${BENCH_PEER:-1} == 0 ]]; then
  peer_load_s="?"; peer_rss="?"
  for s in read read_warm name identifier tx; do peer_r[$s]="0 ? 0 ? ?"; done
else
pport=$(free_port)
start=$(date +%s.%N)
(cd tools/oracle && exec node bench_gateway_peer.mjs "$pport" "$tmp/patients.ndjson") >"$tmp/peer.log" 2>&1 &
ppid=$!
pids+=("$ppid")
wait_up "$pport"
peer_load_s=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN {printf "%.1f", a - b}')
sleep 3
peer_rss=$(rss_mb "$ppid")
measure peer "$pport" peer_r "$ppid"
kill "$ppid"; wait "$ppid" 2>/dev/null || true
fi

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}x' if b>0 else 'n/a')" "$1" "$2" 2>/dev/null || echo n/a; }
echo
echo "Gateway benchmark: $n patients, wrk -t2 -c50 -d$duration, $(nproc) cores"
printf "%-34s %14s %14s %8s\n" "scenario" "kakehashi" "medplum-peer" "ratio"
for s in read read_warm name identifier tx; do
  read -r a ap99 anon aload acpu <<<"${kk_r[$s]}"
  read -r b bp99 bnon bload bcpu <<<"${peer_r[$s]}"
  label=$s; unit="req/s"
  case $s in
    read) label="read by id";;
    read_warm) label="read by id, warm cache";;
    name) label="search name (_count=10)";;
    identifier) label="search identifier";;
    tx) label="transaction (100 res.)"; a=$(awk -v x="$a" 'BEGIN {printf "%.0f", x * 100}'); b=$(awk -v x="$b" 'BEGIN {printf "%.0f", x * 100}'); unit="res/s";;
  esac
  printf "%-34s %14s %14s %8s\n" "$label $unit" "$a" "$b" "$(ratio "$a" "$b")"
  printf "%-34s %14s %14s\n" "  p99 latency ms (non-2xx)" "$ap99 ($anon)" "$bp99 ($bnon)"
  printf "%-34s %14s %14s\n" "  load average before the run" "$aload" "$bload"
  printf "%-34s %14s %14s\n" "  server CPU per request (us)" "$acpu" "$bcpu"
done
printf "%-34s %14s %14s\n" "load $n patients (s)" "$load_s" "$peer_load_s"
printf "%-34s %14s %14s %8s\n" "idle RSS after load (MB)" "$kk_rss" "$peer_rss" "$(ratio "$kk_rss" "$peer_rss")"
printf "%-34s %14s\n" "RSS after the read runs (MB)" "$kk_rss_read"
printf "%-34s %14s\n" "RSS after the runs (MB)" "$kk_rss_after"
echo "load average at the kakehashi RSS sample: $kk_rss_load; now: $(cut -d' ' -f1-3 /proc/loadavg)"
