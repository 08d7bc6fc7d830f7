#!/usr/bin/env bash
# bench/bench_chain_search.sh [BUILD_DIR] [N_PATIENTS]
#
# The searches of decisions 0041, 0044 and 0045 over N synthetic patients
# (bench/gen_fhir_patients.py, default 100,000) with one Observation each, 100 managing
# Organizations part of 10 groups (bench/gen_chain_data.py): `_has`, chains of one, two and three
# links, reference `:identifier`, identifier `:of-type`, token `:in`, `_summary`/`_elements` on a
# name search, `_text`/`_content` with terms of 3 or more characters (Japanese and Latin) and of
# 2, with plain name/identifier searches for comparison. BACKENDS="sqlite pg" (default both).
# Per query and backend: the entries of the first page (and total), then under wrk (-t2 -c50,
# BENCH_DURATION default 5s, as bench_gateway.sh) req/s, p99 latency, the server's CPU per
# request (kakehashi; on PostgreSQL also the cluster's: the figures to compare on a loaded
# machine) and the load average before the run. Then the plans: SQLite's EXPLAIN QUERY PLAN of
# the statements the server runs (build/bench/bench_search_plan, with the SQL CPU time of one
# execution), PostgreSQL's EXPLAIN ANALYZE of each (auto_explain, one request per query) in
# $PLAN_OUT (default /tmp/bench_chain_search_pg_plans.txt; the node lines are printed).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
n=${2:-100000}
duration=${BENCH_DURATION:-5s}
backends=${BACKENDS:-sqlite pg}
plan_out=${PLAN_OUT:-/tmp/bench_chain_search_pg_plans.txt}
wrk_timeout=30s
kk="$build/kakehashi"
plan="$build/bench/bench_search_plan"
[[ -x $kk && -x $plan ]] || { echo "bench_chain_search: build $kk and $plan first" >&2; exit 2; }
for tool in wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "bench_chain_search: $tool is required" >&2; exit 2; }
done

bench_name=bench_chain_search
# shellcheck source=bench/gateway_lib.sh
source bench/gateway_lib.sh
bench_tmp kakehashi-bench-chain

python3 bench/gen_fhir_patients.py "$n" "$tmp/p.ndjson"
python3 bench/gen_chain_data.py "$tmp/p.ndjson" "$tmp" 100
rm "$tmp/p.ndjson"

# label#search (after /fhir/, percent-encoded)
cases=(
  "_has:Observation:patient:code=c17 (100 patients)#Patient?_has:Observation:patient:code=http://example.org/bench%7Cc17"
  "  the same, _summary=count#Patient?_has:Observation:patient:code=http://example.org/bench%7Cc17&_summary=count"
  "patient.name=佐藤 (1 link, 5,000 obs)#Observation?patient.name=%E4%BD%90%E8%97%A4"
  "patient.organization.name=Org 42 (2 links, 1,000)#Observation?patient.organization.name=Org%2042"
  "  the same, _summary=count#Observation?patient.organization.name=Org%2042&_summary=count"
  "patient.organization.partof.name=Group 3 (3, 10,000)#Observation?patient.organization.partof.name=Group%203"
  "subject:identifier=system|value (1 obs)#Observation?subject:identifier=urn:oid:1.2.392.100495.20.3.51.11311234567%7C00012345"
  "identifier:of-type=v2-0203|MR|value (1)#Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203%7CMR%7C00012345"
  "code:in=v2-0078 ValueSet (0 obs)#Observation?code:in=http://terminology.hl7.org/ValueSet/v2-0078"
  "name=佐藤 _count=10 (for comparison)#Patient?name=%E4%BD%90%E8%97%A4&_count=10"
  "  the same, _summary=true#Patient?name=%E4%BD%90%E8%97%A4&_count=10&_summary=true"
  "  the same, _elements=name,birthDate#Patient?name=%E4%BD%90%E8%97%A4&_count=10&_elements=name,birthDate"
  "_text=kind0017 (Latin, 100 obs)#Observation?_text=kind0017"
  "_text=血糖値 (3 chars, every obs)#Observation?_text=%E8%A1%80%E7%B3%96%E5%80%A4"
  "_content=タカハシ (4 chars, 5,000 patients)#Patient?_content=%E3%82%BF%E3%82%AB%E3%83%8F%E3%82%B7"
  "_content=00012345 (Latin, 1 patient)#Patient?_content=00012345"
  "_content=佐藤 (2 chars, 5,000 patients)#Patient?_content=%E4%BD%90%E8%97%A4"
  "_text=zq (2 chars, no match)#Observation?_text=zq"
  "identifier=… (for comparison)#Patient?identifier=urn:oid:1.2.392.100495.20.3.51.11311234567%7C00012345"
)

hz=$(getconf CLK_TCK)
postmaster=
serve() {  # DB-URL: serves the data (loading it if the store is new), sets port and kpid
  port=$(free_port)
  local load=()
  [[ ${2:-} == load ]] && load=(--load "$tmp/organizations.ndjson" --load "$tmp/patients.ndjson"
    --load "$tmp/observations.ndjson")
  "$kk" serve --port "$port" --db "$1" --auth off "${load[@]}" >"$tmp/kk.log" 2>&1 &
  kpid=$!
  pids+=("$kpid")
  # The observations are loaded last: up when the last one reads (up to an hour).
  wait_up "$port" "/fhir/Observation/obs$((n - 1))" 7200
}
stop_serve() { kill -TERM "$kpid"; wait "$kpid" 2>/dev/null || true; }

measure_all() {  # backend
  local base="http://127.0.0.1:$port/fhir" c label search body entries c0 c1 cluster
  printf "\n%s: %d patients, %d observations, 110 organizations; wrk -t2 -c50 -d%s, %d cores\n" \
    "$1" "$n" "$n" "$duration" "$(nproc)"
  printf "%-54s %7s %6s %8s %9s %9s %9s %5s\n" query entries total req/s "p99 ms" "us/req" \
    "pg us/req" load
  for c in "${cases[@]}"; do
    label=${c%%#*}
    search=${c#*#}
    body=$(curl -s "$base/$search")
    entries=$(python3 -c 'import json,sys; b=json.load(sys.stdin); print(len(b.get("entry",[])), b.get("total","-")) if b.get("resourceType")=="Bundle" else print("error", "-")' <<<"$body")
    c0=0
    [[ -n $postmaster ]] && c0=$(cluster_ticks)
    read -r rps p99 non2xx load cpu <<<"$(run_wrk "$base/$search" "$kpid")"
    cluster="-"
    if [[ -n $postmaster ]]; then
      c1=$(cluster_ticks)
      cluster=$(awk -v a="$c0" -v b="$c1" -v r="$rps" -v d="${duration%s}" -v hz="$hz" \
        'BEGIN {n = r * d; if (n > 0) printf "%.0f", (b - a) * 1e6 / hz / n; else print "?"}')
    fi
    [[ $non2xx != 0 ]] && label="$label [$non2xx non-2xx]"
    printf "%-54s %7s %6s %8s %9s %9s %9s %5s\n" "$label" $entries "$rps" "$p99" "$cpu" "$cluster" \
      "$load"
  done
}

for backend in $backends; do
  case $backend in
    sqlite)
      start=$(date +%s.%N)
      serve "sqlite:$tmp/bench.sqlite" load
      printf "sqlite: loaded in %.1f s\n" "$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN {print a - b}')"
      measure_all sqlite
      stop_serve
      echo
      echo "SQLite plans (bench_search_plan: the statements the server runs, SQL CPU of one run):"
      searches=()
      for c in "${cases[@]}"; do searches+=("${c#*#}"); done
      "$plan" "$tmp/bench.sqlite" 3 "${searches[@]}"
      rm -f "$tmp"/bench.sqlite*
      ;;
    pg)
      pg_state="$tmp/pg"
      # auto_explain in every session, off (log_min_duration -1, its default) until the plan pass
      # below sets it with ALTER SYSTEM (a command-line setting would override that).
      url=$(KAKEHASHI_PG_TMP=/tmp KAKEHASHI_PG_SETTINGS="-c session_preload_libraries=auto_explain \
-c auto_explain.log_analyze=on -c auto_explain.log_buffers=on" \
        tools/pg_test_server.sh start "$pg_state")
      pgdir=$(cat "$pg_state/datadir")
      postmaster=$(head -1 "$pgdir/data/postmaster.pid")
      psql=(/usr/lib/postgresql/15/bin/psql -q -X "$url")
      start=$(date +%s.%N)
      serve "$url" load
      stop_serve
      "${psql[@]}" -c "VACUUM ANALYZE" >/dev/null
      printf "pg: loaded (and VACUUM ANALYZE) in %.1f s\n" "$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN {print a - b}')"
      serve "$url"
      measure_all pg
      # One request per query with every statement's EXPLAIN ANALYZE in the cluster's log.
      "${psql[@]}" -c "ALTER SYSTEM SET auto_explain.log_min_duration = 0" -c "SELECT pg_reload_conf()" >/dev/null
      sleep 1
      : >"$plan_out"
      for c in "${cases[@]}"; do
        mark=$(wc -l <"$pgdir/server.log")
        curl -s -o /dev/null "http://127.0.0.1:$port/fhir/${c#*#}"
        sleep 0.3
        { echo "=== ${c%%#*}: ${c#*#}"; tail -n +"$((mark + 1))" "$pgdir/server.log"; } >>"$plan_out"
      done
      "${psql[@]}" -c "ALTER SYSTEM SET auto_explain.log_min_duration = -1" -c "SELECT pg_reload_conf()" >/dev/null
      stop_serve
      echo
      echo "PostgreSQL plans (auto_explain, EXPLAIN ANALYZE; whole plans in $plan_out):"
      grep -E "^===|Query Text|->|^\s+(Limit|Aggregate|Sort|Seq Scan|Index|Bitmap|Nested|Hash|Merge|Result)|duration" \
        "$plan_out" | grep -vE "Query Text: (SELECT (json|pid|1 FROM kakehashi|.*FROM resources WHERE type = \\\$1 AND id = \\\$2)|BEGIN|COMMIT)" |
        sed -E 's/^.*(LOG:  duration: [0-9.]+ ms).*/  \1/; s/(.{160}).*/\1…/'
      tools/pg_test_server.sh stop "$pg_state" >/dev/null 2>&1 || true
      pg_state=
      postmaster=
      ;;
  esac
done
echo
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
