#!/usr/bin/env bash
# make run: the main job on embedded defaults — convert the bundled SS-MIX2 sample store
# (samples/ssmix2/constructed/standard_root, invented data) into one FHIR R4 JP Core transaction
# Bundle, with the issues as an OperationOutcome next to it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
"$build/kakehashi" --version
mkdir -p data
out=data/demo-bundle.json
issues=data/demo-issues.json
# --facility: the samples carry no 医療機関コード (MSH-4 is "SEND"); 1312345679 is an invented
# 10-digit code with a valid check digit, used for the patient/staff/order identifier systems.
"$build/kakehashi" convert --facility 1312345679 --issues "$issues" --out "$out" \
  samples/ssmix2/constructed/standard_root
echo "kakehashi: wrote $out ($(wc -c < "$out") bytes; a FHIR R4 transaction Bundle) and $issues"

# Serve it (issue #6): load the Bundle into data/demo.sqlite and serve FHIR on 127.0.0.1:8080
# until Ctrl-C (the server prints URLs to try). KAKEHASHI_DEMO_NO_SERVE=1 stops after converting.
if [[ -z ${KAKEHASHI_DEMO_NO_SERVE:-} ]]; then
  exec "$build/kakehashi" serve --db sqlite:data/demo.sqlite --load "$out" --auth off \
    --port "${KAKEHASHI_DEMO_PORT:-8080}"
fi
