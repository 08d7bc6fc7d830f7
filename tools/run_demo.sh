#!/usr/bin/env bash
# make run: the main job on embedded defaults — the bundled SS-MIX2 sample store
# (samples/ssmix2/constructed/standard_root, invented data) converted to FHIR R4 JP Core, imported
# into data/demo.sqlite and served on 127.0.0.1:8080 (issue #6).
#   data/demo-bundle.json   the same conversion as one transaction Bundle (kakehashi convert)
#   data/demo-issues.json   its issues as an OperationOutcome
#   data/demo.sqlite        the gateway database (kakehashi import; re-running skips what is done)
# KAKEHASHI_DEMO_NO_SERVE=1 stops after importing; KAKEHASHI_DEMO_PORT changes the port (0: a free
# one, printed); KAKEHASHI_DEMO_DATA changes the data directory (tests/import/run_demo_test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
"$build/kakehashi" --version
data=${KAKEHASHI_DEMO_DATA:-data}
mkdir -p "$data"
root=samples/ssmix2/constructed/standard_root
out=$data/demo-bundle.json
issues=$data/demo-issues.json
db=sqlite:$data/demo.sqlite
# --facility: the samples carry no 医療機関コード (MSH-4 is "SEND"); 1312345679 is an invented
# 10-digit code with a valid check digit, used for the patient/staff/order identifier systems.
facility=1312345679
"$build/kakehashi" convert --facility "$facility" --issues "$issues" --out "$out" "$root"
echo "kakehashi: wrote $out ($(wc -c < "$out") bytes; a FHIR R4 transaction Bundle) and $issues"

if [[ -n ${KAKEHASHI_DEMO_NO_SERVE:-} ]]; then
  "$build/kakehashi" import ssmix2 "$root" --facility "$facility" --db "$db"
  echo "kakehashi: imported $root into ${db#sqlite:} (serve it: $build/kakehashi serve --db $db)"
  exit 0
fi
# Import the store (resumable; already imported patients are skipped) and serve FHIR until
# Ctrl-C; the server prints URLs to try.
exec "$build/kakehashi" serve --db "$db" --load "$root" --facility "$facility" --auth off \
  --port "${KAKEHASHI_DEMO_PORT:-8080}"
