#!/usr/bin/env bash
# bench/bench_large_writes.sh KAKEHASHI [N_PATIENTS] [BODY_KIB]
#
# Reads by id while large writes arrive: does preparing a large write body on an io thread
# (JSON parse, validation, index rows) delay the other connections of that thread?
# `kakehashi serve` (binary KAKEHASHI, default io/reader threads) is loaded with N synthetic
# patients (default 10,000, bench/gen_fhir_patients.py) and read once (cache warm); then for
# BENCH_DURATION (default 5s) two wrk run at once: 48 connections reading random patients by id
# and 2 connections PUTting one Observation with components of about BODY_KIB KiB (default 16)
# again and again. Prints the reads' req/s and latency percentiles, the PUTs' req/s, and the
# server CPU (user+sys) per request of both. Pass two binaries' runs alternately for an A/B.
set -euo pipefail
cd "$(dirname "$0")/.."
kk=${1:?usage: bench_large_writes.sh KAKEHASHI [N_PATIENTS] [BODY_KIB]}
n=${2:-10000}
kib=${3:-16}
duration=${BENCH_DURATION:-5s}
tmp=$(mktemp -d /tmp/kakehashi-bench-lw.XXXXXX)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
python3 bench/gen_fhir_patients.py "$n" "$tmp/patients.ndjson"
python3 - "$kib" "$tmp/obs.json" <<'PY'
import json, sys
kib, out = int(sys.argv[1]), sys.argv[2]
comp = {"code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "valueQuantity": {"value": 100, "unit": "mg/dL", "system": "http://unitsofmeasure.org",
                          "code": "mg/dL"}}
each = len(json.dumps(comp, separators=(",", ":"))) + 1
obs = {"resourceType": "Observation", "id": "big", "status": "final",
       "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
       "subject": {"reference": "Patient/p0"}, "effectiveDateTime": "2026-11-30T09:00:00+09:00",
       "component": [comp] * max(1, kib * 1024 // each)}
open(out, "w").write(json.dumps(obs, separators=(",", ":")))
PY
cat >"$tmp/read.lua" <<LUA
math.randomseed(os.time())
request = function() return wrk.format("GET", "/fhir/Patient/p" .. math.random(0, $n - 1)) end
LUA
cat >"$tmp/put.lua" <<LUA
local f = io.open("$tmp/obs.json", "rb")
wrk.body = f:read("*a")
f:close()
wrk.method = "PUT"
wrk.path = "/fhir/Observation/big"
wrk.headers["Content-Type"] = "application/fhir+json"
LUA
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$kk" serve --port "$port" --db "sqlite:$tmp/db.sqlite" --load "$tmp/patients.ndjson" --auth off \
  >"$tmp/kk.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/fhir/Patient/p0" && break
  sleep 0.5
done
# Warm the read cache: every patient once.
wrk -t1 -c10 -d3s -s "$tmp/read.lua" "http://127.0.0.1:$port" >/dev/null
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
load=$(cut -d' ' -f1 /proc/loadavg)
t0=$(ticks)
wrk -t1 -c2 -d"$duration" -s "$tmp/put.lua" "http://127.0.0.1:$port" >"$tmp/put.out" 2>&1 &
wpid=$!
wrk -t1 -c48 -d"$duration" --latency -s "$tmp/read.lua" "http://127.0.0.1:$port" >"$tmp/read.out" 2>&1
wait "$wpid"
t1=$(ticks)
reads=$(awk '/requests in/ {print $1}' "$tmp/read.out")
puts=$(awk '/requests in/ {print $1}' "$tmp/put.out")
echo "$(basename "$kk"): $n patients, PUT body $(stat -c %s "$tmp/obs.json") bytes, load $load"
echo "  reads/s $(awk '/Requests\/sec/ {print $2}' "$tmp/read.out"), latency:" \
  "$(awk '$1=="50%"||$1=="90%"||$1=="99%" {printf "%s %s  ", $1, $2}' "$tmp/read.out")" \
  "max $(awk '/Latency/ {print $4; exit}' "$tmp/read.out")"
echo "  PUTs/s $(awk '/Requests\/sec/ {print $2}' "$tmp/put.out"), non-2xx" \
  "$(awk '/Non-2xx/ {print $5}' "$tmp/put.out")"
awk -v a="$t0" -v b="$t1" -v n="$((reads + puts))" -v hz="$(getconf CLK_TCK)" \
  'BEGIN {printf "  server CPU per request (reads + PUTs) %.1f us\n", (b - a) * 1e6 / hz / n}'
