#!/usr/bin/env bash
# `kakehashi reindex` (decision 0037): a database imported by this kakehashi is up to date; one
# whose recorded index definition is another (an older kakehashi) is re-indexed, and the
# resources keep answering the same searches; --force re-indexes everything; usage errors exit 2.
# Usage: reindex_cli_test.sh KAKEHASHI SOURCE_DIR WORK_DIR
set -euo pipefail
kakehashi=$1
root=$2/samples/ssmix2/constructed/standard_root
work=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAILED: $*" >&2; exit 1; }
db=$work/store.sqlite

"$kakehashi" import ssmix2 "$root" --jobs 2 --db "sqlite:$db" --issues "$work/issues.json" \
  2>"$work/import.txt" || fail "import exit code"
"$kakehashi" reindex --db "sqlite:$db" >"$work/up.txt" || fail "reindex exit code (up to date)"
grep -q '^kakehashi reindex: up to date (index definition v[0-9]*-[0-9a-f]\{16\})$' "$work/up.txt" ||
  fail "not up to date after import: $(cat "$work/up.txt")"

# An older kakehashi's database: another definition recorded and its token rows gone
python3 - "$db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE kakehashi_index_state SET fingerprint = 'older', done_rk = NULL")
c.execute("DELETE FROM idx_token")
c.commit()
PY
"$kakehashi" reindex --db "sqlite:$db" >"$work/re.txt" 2>"$work/re.err" || fail "reindex exit code"
grep -q '^kakehashi reindex: [1-9][0-9]* resources re-indexed in ' "$work/re.txt" ||
  fail "not re-indexed: $(cat "$work/re.txt")"
n=$(sed 's/^kakehashi reindex: \([0-9]*\) .*/\1/' "$work/re.txt")
"$kakehashi" reindex --force --batch 7 --db "sqlite:$db" >"$work/force.txt" 2>"$work/force.err" ||
  fail "reindex --force exit code"
grep -q "^kakehashi reindex: $n resources re-indexed in " "$work/force.txt" ||
  fail "--force did not re-index the same $n resources: $(cat "$work/force.txt")"
tokens=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM idx_token').fetchone()[0])" "$db")
[ "$tokens" -gt 0 ] || fail "no token rows after the re-index"

"$kakehashi" reindex --help | grep -q '^Usage: kakehashi reindex' || fail "--help"
set +e
"$kakehashi" reindex --db "sqlite:$work/missing.sqlite" 2>/dev/null
[ $? -eq 2 ] || fail "a missing database is not a usage error"
[ ! -e "$work/missing.sqlite" ] || fail "a missing database was created"
"$kakehashi" reindex --batch 0 --db "sqlite:$db" 2>/dev/null
[ $? -eq 2 ] || fail "--batch 0 is not a usage error"
set -e
echo ok
