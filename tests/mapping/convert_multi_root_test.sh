#!/usr/bin/env bash
# `kakehashi convert` of two SS-MIX2 roots holding the same patient (decision 0017): a full export
# and a delta root (tests/cases/ssmix2/two_roots_full_delta). The transaction Bundle has each
# Type/id once (bdl-7), the delta's replacement wins, the delete is applied, the stay's Encounter
# is merged from both roots; --jobs 1 and --jobs 2 write the same bytes, and so does either root
# order. A store plus a file input naming the same patient writes no Type/id twice either.
# Usage: convert_multi_root_test.sh KAKEHASHI SOURCE_DIR WORK_DIR
set -euo pipefail
kakehashi=$1
case_dir=$2/tests/cases/ssmix2/two_roots_full_delta
work=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAILED: $*" >&2; exit 1; }
convert() { "$kakehashi" convert --facility 1312345679 "$@" 2>>"$work/stderr.txt"; }
# The request lines of a Bundle, one per entry: "METHOD Type/id".
requests() { grep -o '"method":"[A-Z]*","url":"[^"]*"' "$1" | sed 's/"method":"\([A-Z]*\)","url":"\([^"]*\)"/\1 \2/'; }
no_repeats() {
  local dups
  dups=$(requests "$1" | awk '{print $2}' | sort | uniq -d)
  [[ -z $dups ]] || fail "$1: Type/id more than once: $dups"
  dups=$(grep -o '"fullUrl":"[^"]*"' "$1" | sort | uniq -d)
  [[ -z $dups ]] || fail "$1: fullUrl more than once: $dups"
}

full=$case_dir/full
delta=$case_dir/delta
convert --jobs 1 --out "$work/j1.json" "$full" "$delta" || fail "exit code (jobs 1)"
convert --jobs 2 --out "$work/j2.json" "$full" "$delta" || fail "exit code (jobs 2)"
cmp "$work/j1.json" "$work/j2.json" || fail "--jobs 1 and --jobs 2 differ"
convert --jobs 2 --out "$work/reversed.json" "$delta" "$full" || fail "exit code (delta first)"
cmp "$work/j1.json" "$work/reversed.json" || fail "the root order changes the output"
convert --jobs 1 --format ndjson --out "$work/j1.ndjson" "$full" "$delta" || fail "ndjson jobs 1"
convert --jobs 2 --format ndjson --out "$work/j2.ndjson" "$full" "$delta" || fail "ndjson jobs 2"
cmp "$work/j1.ndjson" "$work/j2.ndjson" || fail "NDJSON --jobs 1 and --jobs 2 differ"

bundle=$work/j1.json
no_repeats "$bundle"
[[ $(requests "$bundle" | wc -l) -eq 12 ]] || fail "expected 12 entries, got $(requests "$bundle" | wc -l)"
# Order 55501: replaced in the delta root (dose 1 -> 2): one PUT, with the delta's dose 2.
order=MedicationRequest/4c67525b-ac3f-8b54-b73f-028cbd1fd47d
[[ $(requests "$bundle" | grep -c "^PUT $order\$") -eq 1 ]] || fail "order 55501 not PUT once"
grep -q '"doseQuantity":{"value":2,' "$bundle" || fail "the delta's dose 2 is missing"
! grep -q '"doseQuantity":{"value":1,' "$bundle" || fail "the full export's dose 1 was written"
# Order 55502: deleted in the delta root: one DELETE, no PUT.
deleted=MedicationRequest/4b6014ab-27a3-80a4-8f62-03abc5ecf0e7
requests "$bundle" | grep -qx "DELETE $deleted" || fail "order 55502 not deleted"
! requests "$bundle" | grep -qx "PUT $deleted" || fail "deleted order 55502 PUT"
# PPR-01 snapshot: the delta's _1 drops one of the full export's three diseases.
requests "$bundle" | grep -qx "DELETE Condition/a8f504dc-fd85-8273-a457-ba47bee7f6bb" ||
  fail "the removed disease is not deleted"
# The stay V000900: admission (full) and discharge (delta) merged into one finished Encounter.
grep -q '"identifier":\[{"value":"V000900"}\],"status":"finished"' "$bundle" ||
  fail "Encounter V000900 not finished"
grep -q '"period":{"start":"2024-06-01T10:00:00+09:00","end":"2024-06-05T10:30:00+09:00"}' "$bundle" ||
  fail "Encounter V000900 period not merged from both roots"

# A store and, after it, files naming its patient (one SS-MIX2 file of the delta root, an HL7 v2
# file with the admission): no Type/id twice; the store's entry wins, the differing repeat is a
# warning (convert.duplicate_resource).
file=$delta/000/012/0000123456/20240601/OMP-01/0000123456_20240601_OMP-01_000000000055501_20240601110000000_01_1
cp "$full/000/012/0000123456/20240601/ADT-22/0000123456_20240601_ADT-22_999999999999999_20240601090000000_01_1" \
  "$work/admission.hl7"
for jobs in 1 2; do
  convert --jobs "$jobs" --out "$work/mixed_$jobs.json" --issues "$work/mixed_issues_$jobs.json" \
    "$full" "$file" "$work/admission.hl7" || fail "exit code (mixed, jobs $jobs)"
  no_repeats "$work/mixed_$jobs.json"
done
cmp "$work/mixed_1.json" "$work/mixed_2.json" || fail "mixed: --jobs 1 and --jobs 2 differ"
grep -q '"convert.duplicate_resource"' "$work/mixed_issues_1.json" ||
  fail "mixed: no convert.duplicate_resource warning"
# the same file given first: its entry wins, the store's repeat is dropped
convert --jobs 2 --out "$work/file_first.json" "$file" "$full" || fail "exit code (file first)"
no_repeats "$work/file_first.json"
grep -q '"doseQuantity":{"value":2,' "$work/file_first.json" || fail "file first: dose 2 missing"
# Issue locations (--issues): with several roots each names its root as given (decision 0003:
# "ssmix2:<root>/<root-relative path>"); with one root they stay root-relative.
convert --jobs 2 --out "$work/loc.json" --issues "$work/loc_issues.json" "$full" "$delta" ||
  fail "exit code (locations)"
grep -qF "\"ssmix2:$full/000/012/0000123456/" "$work/loc_issues.json" || fail "full root not named"
grep -qF "\"ssmix2:$delta/000/012/0000123456/" "$work/loc_issues.json" || fail "delta root not named"
! grep -qF '"ssmix2:000/' "$work/loc_issues.json" || fail "a root-relative location with two roots"
cmp "$work/j2.json" "$work/loc.json" || fail "the Bundle depends on --issues"
# A root given with trailing '/' is named without them (RootLabel, as import does).
convert --jobs 2 --out "$work/slash.json" --issues "$work/slash_issues.json" "$full//" "$delta" ||
  fail "exit code (trailing slash)"
grep -qF "\"ssmix2:$full/000/012/0000123456/" "$work/slash_issues.json" || fail "slash root not named"
! grep -qF "\"ssmix2:$full//" "$work/slash_issues.json" || fail "the trailing '/' of a root was kept"
convert --jobs 2 --out "$work/one.json" --issues "$work/one_issues.json" "$full" ||
  fail "exit code (one root)"
grep -qF '"ssmix2:000/012/0000123456/' "$work/one_issues.json" || fail "one root: not root-relative"
! grep -qF "ssmix2:$full" "$work/one_issues.json" || fail "one root: the root is named"
echo "ok"
