#!/usr/bin/env bash
# bench/bench_chain_search.sh [BUILD_DIR] [N_PATIENTS]
#
# Reverse chaining and chains of two links (decision 0044) over N synthetic patients
# (bench/gen_fhir_patients.py, default 100,000) with one Observation each and 100 managing
# Organizations (bench/gen_chain_data.py), on SQLite. Per query: the entries of the first page
# (and total), the median wall time of REPS sequential curl requests, and the server's CPU
# (user+sys, /proc/PID/stat) per request, the figure to compare on a loaded machine. Then the
# SQLite query plans (EXPLAIN QUERY PLAN) of the statements the search builds for them.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
n=${2:-100000}
reps=${REPS:-30}
kk="$build/kakehashi"
[[ -x $kk ]] || { echo "bench_chain_search: build $kk first" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "bench_chain_search: sqlite3 is required" >&2; exit 2; }

tmp=$(mktemp -d /tmp/kakehashi-bench-chain.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

python3 bench/gen_fhir_patients.py "$n" "$tmp/p.ndjson"
python3 bench/gen_chain_data.py "$tmp/p.ndjson" "$tmp" 100
rm "$tmp/p.ndjson"

bench_name=bench_chain_search
# shellcheck source=bench/gateway_lib.sh
source bench/gateway_lib.sh
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

port=$(free_port)
start=$(date +%s.%N)
"$kk" serve --port "$port" --db "sqlite:$tmp/bench.sqlite" --auth off \
  --load "$tmp/organizations.ndjson" --load "$tmp/patients.ndjson" --load "$tmp/observations.ndjson" \
  >"$tmp/kk.log" 2>&1 &
kpid=$!
pids+=("$kpid")
wait_up "$port"
# wait_up answers once patients are in; the observations come last: wait for the last one.
for _ in $(seq 1 1200); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/fhir/Observation/obs$((n - 1))" && break
  sleep 0.5
done
printf "loaded %d patients, %d observations, 100 organizations in %.1f s\n" "$n" "$n" \
  "$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN {print a - b}')"

base="http://127.0.0.1:$port/fhir"
has="$base/Patient?_has:Observation:patient:code=http://example.org/bench%7Cc17"
chain2="$base/Observation?patient.organization.name=Org%2042"
typed2="$base/Observation?subject:Patient.organization.name=Org%2042"
chain1="$base/Observation?patient.name=%E4%BD%90%E8%97%A4&_count=20"
ident="$base/Patient?identifier=urn:oid:1.2.392.100495.20.3.51.11311234567%7C00012345"
printf "%-58s %8s %6s %10s %12s %6s\n" query entries total "wall ms" "CPU us/req" load
measure() {  # label url
  local body entries total t0 t1 walls cpu load
  body=$(curl -sf "$2")
  entries=$(python3 -c 'import json,sys; b=json.load(sys.stdin); print(len(b.get("entry",[])), b.get("total","-"))' <<<"$body")
  load=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(cpu_ticks "$kpid")
  walls=$(for _ in $(seq 1 "$reps"); do curl -sf -o /dev/null -w '%{time_total}\n' "$2"; done | sort -n)
  t1=$(cpu_ticks "$kpid")
  cpu=$(awk -v a="$t0" -v b="$t1" -v n="$reps" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", (b - a) * 1e6 / hz / n}')
  printf "%-58s %8s %6s %10.2f %12s %6s\n" "$1" ${entries} \
    "$(awk -v m=$(( (reps + 1) / 2 )) 'NR == m {print $1 * 1000}' <<<"$walls")" "$cpu" "$load"
}
measure "_has:Observation:patient:code=c17 (100 patients)" "$has"
measure "  the same, _summary=count" "$has&_summary=count"
measure "  the same, _sort=family" "$has&_sort=family"
measure "patient.organization.name=Org 42 (1,000 obs)" "$chain2"
measure "  subject:Patient.organization.name=Org 42" "$typed2"
measure "  the same, _summary=count" "$chain2&_summary=count"
measure "patient.name=佐藤 (one link, for comparison)" "$chain1"
measure "identifier=… (no chain, for comparison)" "$ident"
kill -TERM "$kpid"; wait "$kpid" 2>/dev/null || true

# The plans of the statements SqlSession::Search writes for the _has and the two-link chain
# (sql_session.cpp AppendPredicate; values as literals, the search keys looked up).
db="$tmp/bench.sqlite"
pid() { sqlite3 "$db" "SELECT pid FROM search_keys WHERE type = '$1' AND param = '$2'"; }
subj=$(pid Observation subject)
code=$(pid Observation code)
org=$(pid Patient organization)
name=$(pid Organization name)
cols="r.type, r.id, r.version, r.last_updated, r.deleted, r.json"
echo
echo "EXPLAIN QUERY PLAN, Patient?_has:Observation:patient:code=…|c17:"
sqlite3 "$db" "EXPLAIN QUERY PLAN SELECT $cols FROM resources r WHERE r.deleted = 0 AND +r.type = 'Patient' AND ((r.rk IN (SELECT t0.rk FROM resources t0 WHERE t0.type = 'Patient' AND t0.id IN (SELECT x0.target_id FROM idx_ref x0 JOIN resources h0 ON h0.rk = x0.rk WHERE (x0.pid = $subj AND x0.target_type = 'Patient') AND x0.target_type = 'Patient' AND h0.deleted = 0 AND ((h0.rk IN (SELECT x1.rk FROM idx_token x1 WHERE (x1.pid = $code) AND x1.system = 'http://example.org/bench' AND x1.code = 'c17'))))))) ORDER BY r.last_updated, r.id LIMIT 20 OFFSET 0"
echo
echo "EXPLAIN QUERY PLAN, Observation?patient.organization.name=Org 42:"
sqlite3 "$db" "EXPLAIN QUERY PLAN SELECT $cols FROM resources r WHERE r.deleted = 0 AND r.type = 'Observation' AND ((r.rk IN (SELECT x0.rk FROM idx_ref x0 WHERE (x0.pid = $subj AND x0.target_type = 'Patient') AND x0.target_type = 'Patient' AND x0.target_id IN (SELECT c0.id FROM resources c0 WHERE +c0.type = 'Patient' AND c0.deleted = 0 AND ((c0.rk IN (SELECT x1.rk FROM idx_ref x1 WHERE (x1.pid = $org) AND x1.target_type = 'Organization' AND x1.target_id IN (SELECT c1.id FROM resources c1 WHERE +c1.type = 'Organization' AND c1.deleted = 0 AND ((c1.rk IN (SELECT x2.rk FROM idx_string x2 WHERE (x2.pid = $name) AND x2.value >= 'org 42' AND x2.value < 'org 43'))))))))))) ORDER BY r.last_updated, r.id LIMIT 20 OFFSET 0"
