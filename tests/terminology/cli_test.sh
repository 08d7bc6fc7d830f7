#!/bin/sh
# End-to-end checks of `kakehashi terminology` (docs/terminology.md "CLI"): Parameters JSON on
# stdout, exit 0 found / 1 not found / 2 usage. Usage: cli_test.sh KAKEHASHI_BINARY FIXTURE_DIR
set -u
bin=$1
fixtures=$2
tmp=$(mktemp -d)
db="sqlite:$tmp/terminology.sqlite"
fail=0
n=0
expect() {  # expect EXIT PATTERN args...
  want=$1; pattern=$2; shift 2
  out=$("$bin" terminology "$@" 2>/dev/null); rc=$?
  if [ "$rc" -ne "$want" ]; then echo "FAIL (exit $rc, want $want): $*"; fail=1; return; fi
  case $out in *"$pattern"*) ;; *) echo "FAIL (output lacks $pattern): $*"; echo "$out"; fail=1 ;; esac
  case $out in '{"resourceType":"Parameters"'*) n=$((n + 1)); printf '%s\n' "$out" > "$tmp/out$n.json" ;; esac
}
expect 0 '"valueString":"Male"' lookup --system HL70001 --code M --db "$db"
expect 1 'terminology.master_not_loaded' lookup --system HOT9 --code 104195801 --db "$db"
expect 2 '' lookup --code 1 --db "$db"
expect 2 '' frobnicate
expect 0 '"valueInteger":' load hot "$fixtures/hot_cp932_crlf_quoted.csv" --db "$db"
expect 0 '"valueString":"ミヤＢＭ錠"' lookup --system urn:oid:1.2.392.200119.4.403.1 --code 104195801 --db "$db"
expect 0 '"valueUri":"urn:oid:1.2.392.200119.4.403.1"' lookup --system HOT9 --code 104195801 --db "$db" --profile jp-core-1.1.2
expect 0 '"code":"104195801"' translate --source-system YJ --code 2316009F1030 --target-system HOT9 --reverse --db "$db"
expect 1 '"valueBoolean":false' translate --source-system HL70001 --code Q --db "$db"
expect 0 '"valueBoolean":true' validate-code --system HL70078 --code HH --valueset http://terminology.hl7.org/ValueSet/v2-0078 --db "$db"
expect 1 '"valueBoolean":false' validate-code --system HL70078 --code ZZ --db "$db"
expect 0 '"total"' expand --valueset http://hl7.org/fhir/ValueSet/administrative-gender --count 2 --db "$db"
expect 0 '"name":"load"' stats --db "$db"
expect 1 '' load hot "$fixtures/jlac10_cp932_crlf_header.csv" --db "$db"
expect 0 'Usage: kakehashi terminology lookup' lookup --help
# Every Parameters printed is valid R4 (when this binary has `kakehashi validate`).
if [ "$n" -gt 0 ] && "$bin" validate --help >/dev/null 2>&1; then
  if ! "$bin" validate "$tmp"/out*.json >/dev/null 2>&1; then
    echo "FAIL: kakehashi validate rejects a terminology output"; "$bin" validate "$tmp"/out*.json; fail=1
  fi
fi
rm -rf "$tmp"
exit $fail
