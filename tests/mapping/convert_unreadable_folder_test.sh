#!/usr/bin/env bash
# `kakehashi convert` of two SS-MIX2 roots where the delta root's patient folder cannot be read
# (mode 000, converted as an unprivileged user): the patient is converted from no input (the full
# export alone would be a stale state, decision 0017), error convert.patient_unreadable goes to
# --issues located at the folder (in that root), stderr names the input only, exit 1.
# Needs root (to drop to user nobody with setpriv; root itself reads a mode-000 folder): exits 77
# (skipped) otherwise.
# Usage: convert_unreadable_folder_test.sh KAKEHASHI SOURCE_DIR WORK_DIR
set -euo pipefail
kakehashi=$1
case_dir=$2/tests/cases/ssmix2/two_roots_full_delta
work=$3
if [[ $(id -u) -ne 0 ]] || ! command -v setpriv >/dev/null; then
  echo "skipped: needs root and setpriv" >&2
  exit 77
fi
fail() { echo "FAILED: $*" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work/out"
cp -r "$case_dir/full" "$case_dir/delta" "$work/"
chmod -R a+rX "$work"
chmod 777 "$work/out"
chmod 000 "$work/delta/000/012/0000123456"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
# nobody must reach the binary; if it cannot (a private build directory), skip.
as_nobody "$kakehashi" --help >/dev/null 2>&1 || { echo "skipped: binary not reachable as nobody" >&2; exit 77; }
set +e
as_nobody "$kakehashi" convert --facility 1312345679 --jobs 2 --out "$work/out/bundle.json" \
  --issues "$work/out/issues.json" "$work/full" "$work/delta" 2>"$work/out/stderr.txt"
rc=$?
set -e
[[ $rc -eq 1 ]] || fail "exit code $rc, expected 1"
grep -q "delta: .*(a patient folder could not be read; that patient is not converted)" \
  "$work/out/stderr.txt" || fail "no stderr line naming the input"
grep -q "0000123456" "$work/out/stderr.txt" && fail "stderr names the patient ID"
# The full export's only patient was skipped; it still holds SS-MIX2 data.
grep -q "full: no SS-MIX2 data found" "$work/out/stderr.txt" && fail "the full root reported as holding no data"
grep -q '"code":"convert.patient_unreadable"' "$work/out/issues.json" || fail "no convert.patient_unreadable issue"
# Two roots: the location names the root whose folder failed (decisions 0003, 0017).
grep -qF "\"location\":[\"ssmix2:$work/delta/000/012/0000123456\"]" "$work/out/issues.json" ||
  fail "issue not located at the folder in the delta root"
# Nothing of patient 0000123456 is written, not even the full export's records; the delta's
# other patient (0000456789, one ADT-22: Encounter + Provenance) is.
grep -q "0000123456" "$work/out/bundle.json" && fail "resources written for the patient that was not read"
grep -q "0000456789" "$work/out/bundle.json" || fail "the other patient is missing"
entries=$(grep -o '"request":' "$work/out/bundle.json" | wc -l)
[[ $entries -eq 2 ]] || fail "$entries entries, expected 2"
chmod 755 "$work/delta/000/012/0000123456"
echo ok
