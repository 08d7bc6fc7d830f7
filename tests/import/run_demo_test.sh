#!/usr/bin/env bash
# `make run` end to end (tools/run_demo.sh, what the target runs after the build): the bundled
# sample store is converted and imported into DATA/demo.sqlite and served; every URL the server
# prints to try answers 200; the conformance validator guards writes (422); SIGINT stops it with
# exit 0. A second start (SIGTERM this time)
# skips the import and serves the same data.
# Usage: run_demo_test.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -euo pipefail
build=$1
src=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT

# HTTP status line of GET URL (http://127.0.0.1:PORT/...), with bash's /dev/tcp (no curl needed).
status() {
  local rest=${1#http://127.0.0.1:}
  local port=${rest%%/*} path=/${rest#*/}
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
  head -n 1 <&3 | tr -d '\r'
  exec 3<&-
}

# "total" of the searchset Bundle at URL.
total() {
  local rest=${1#http://127.0.0.1:}
  local port=${rest%%/*} path=/${rest#*/}
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
  sed -n 's/.*"total":\([0-9]*\).*/\1/p' <&3
  exec 3<&-
}

# Status line and body of POST URL with a JSON body.
post() {
  local rest=${1#http://127.0.0.1:}
  local port=${rest%%/*} path=/${rest#*/}
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/fhir+json\r\nContent-Length: %d\r\n\r\n%s' \
    "$path" "${#2}" "$2" >&3
  tr -d '\r' <&3
  exec 3<&-
}

start() {
  KAKEHASHI_DEMO_DATA="$work/data" KAKEHASHI_DEMO_PORT=0 "$src/tools/run_demo.sh" "$build" \
    >"$work/out.txt" 2>"$work/err.txt" &
  pid=$!
  for _ in $(seq 1 300); do
    if grep -q 'Ctrl-C stops' "$work/out.txt" 2>/dev/null; then break; fi
    kill -0 "$pid" 2>/dev/null || { cat "$work/out.txt" "$work/err.txt"; echo "demo exited"; exit 1; }
    sleep 0.1
  done
  grep -q 'Ctrl-C stops' "$work/out.txt" || { cat "$work/err.txt"; echo "demo did not start"; exit 1; }
}

# stop SIGNAL: the server stops gracefully and exits 0.
stop() {
  kill "-$1" "$pid"
  local rc=0
  wait "$pid" || rc=$?
  pid=
  [[ $rc -eq 0 ]] || { cat "$work/err.txt"; echo "exit $rc after SIG$1"; exit 1; }
  grep -q 'kakehashi serve: stopped' "$work/err.txt" || { echo "no 'stopped' after SIG$1"; exit 1; }
}

start
[[ -s $work/data/demo-bundle.json && -s $work/data/demo.sqlite ]] || { echo "no demo data"; exit 1; }
grep -q 'imported so far: 1 units (0 already done)' "$work/err.txt" || { cat "$work/err.txt"; exit 1; }
urls=$(sed -n "s|.*curl '\{0,1\}\(http://127.0.0.1:[0-9]*/[a-z][^' ]*\)'\{0,1\}.*|\1|p" "$work/out.txt")
echo "$urls" | grep -q '/health/ready$' || { cat "$work/out.txt"; echo "no /health/ready URL printed"; exit 1; }
[[ $(echo "$urls" | wc -l) -ge 4 ]] || { cat "$work/out.txt"; echo "fewer than 4 URLs printed"; exit 1; }
for url in $urls; do
  line=$(status "$url")
  [[ $line == "HTTP/1.1 200 OK" ]] || { echo "$url: $line"; exit 1; }
done
# Every write is validated by conformance/ before it is stored (issue #6): the served binary
# answers an invalid Patient (gender outside its required binding) with 422 and the validator's
# issue, stores nothing, and takes the valid one.
base=$(echo "$urls" | sed -n 1p | sed 's|/metadata$||')
before=$(total "$base/Patient?_summary=count")
[[ -n $before ]] || { echo "no Patient total"; exit 1; }
bad=$(post "$base/Patient" '{"resourceType":"Patient","gender":"robot"}')
[[ $(echo "$bad" | head -n 1) == "HTTP/1.1 422 Unprocessable Entity" ]] || { echo "$bad"; exit 1; }
echo "$bad" | grep -q '"conformance\.' || { echo "422 without a conformance issue: $bad"; exit 1; }
[[ $(total "$base/Patient?_summary=count") == "$before" ]] || { echo "the invalid Patient was stored"; exit 1; }
good=$(post "$base/Patient" '{"resourceType":"Patient","gender":"female"}')
[[ $(echo "$good" | head -n 1) == "HTTP/1.1 201 Created" ]] || { echo "$good"; exit 1; }
[[ $(total "$base/Patient?_summary=count") == $((before + 1)) ]] || { echo "Patient total"; exit 1; }
stop INT

start
grep -q 'imported so far: 0 units (1 already done)' "$work/err.txt" || { cat "$work/err.txt"; exit 1; }
url=$(echo "$urls" | sed -n 2p | sed 's|127.0.0.1:[0-9]*|127.0.0.1:PORT|')
port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/fhir (sqlite).*|\1|p' "$work/out.txt")
line=$(status "${url/PORT/$port}")
[[ $line == "HTTP/1.1 200 OK" ]] || { echo "after restart: $line"; exit 1; }
stop TERM
echo "make run (tools/run_demo.sh): ok"
