#!/usr/bin/env bash
# End to end over loopback: `kakehashi serve --load ROOT` imports an SS-MIX2 store (through the
# importer) and serves it, with the terminology operations; a second start skips what is done.
# Usage: serve_load_test.sh KAKEHASHI SOURCE_DIR WORK_DIR
set -euo pipefail
kakehashi=$1
src=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
db="sqlite:$work/serve.sqlite"
root="$src/samples/ssmix2/constructed/standard_root"
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT

# GET PATH from 127.0.0.1:PORT with bash's /dev/tcp (no curl needed); prints the body.
get() {
  local port=$1 path=$2
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
  sed -e '1,/^\r$/d' <&3
  exec 3<&-
}

start() {
  "$kakehashi" serve --db "$db" --load "$root" --facility 1312345679 --port 0 --auth off "$@" \
    >"$work/out.txt" 2>"$work/err.txt" &
  pid=$!
  for _ in $(seq 1 100); do
    if grep -q '/fhir (sqlite)' "$work/out.txt" 2>/dev/null; then break; fi
    sleep 0.1
  done
  port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/fhir (sqlite).*|\1|p' "$work/out.txt")
  [[ -n $port ]] || { cat "$work/err.txt"; echo "server did not start"; exit 1; }
}

stop() {
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
}

start
count=$(get "$port" '/fhir/Patient?_summary=count')
echo "$count" | grep -q '"total":1' || { echo "Patient count: $count"; exit 1; }
obs=$(get "$port" '/fhir/Observation?_summary=count')
echo "$obs" | grep -q '"total":5' || { echo "Observation count: $obs"; exit 1; }
lookup=$(get "$port" '/fhir/CodeSystem/$lookup?system=HL70001&code=F')
echo "$lookup" | grep -q '"valueString":"Female"' || { echo "lookup: $lookup"; exit 1; }
meta=$(get "$port" '/fhir/metadata')
echo "$meta" | grep -q '"name":"translate"' || { echo "metadata lacks translate"; exit 1; }
grep -q 'imported so far: 1 units (0 already done)' "$work/err.txt" || { cat "$work/err.txt"; exit 1; }
stop

# Second start on the same database, without the read cache: the patient folder is skipped, the
# data is still there, and a read by id answers the same bytes as with the cache.
start --read-cache 0
grep -q 'imported so far: 0 units (1 already done)' "$work/err.txt" || { cat "$work/err.txt"; exit 1; }
count=$(get "$port" '/fhir/Patient?_summary=count')
echo "$count" | grep -q '"total":1' || { echo "Patient count after restart: $count"; exit 1; }
id=$(get "$port" '/fhir/Patient?_elements=id' | sed -n 's/.*"resourceType":"Patient","id":"\([^"]*\)".*/\1/p')
[[ -n $id ]] || { echo "no Patient id in the search"; exit 1; }
uncached=$(get "$port" "/fhir/Patient/$id")
stop
start
cached=$(get "$port" "/fhir/Patient/$id")
cached_again=$(get "$port" "/fhir/Patient/$id")
[[ -n $uncached && $uncached == "$cached" && $cached == "$cached_again" ]] ||
  { echo "read by id differs with and without the read cache"; exit 1; }
stop
echo "serve --load of an SS-MIX2 store: ok"
