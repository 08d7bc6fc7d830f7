#!/usr/bin/env bash
# tests/catch_shard.sh BINARY SPEC INDEX COUNT [OUT_DIR]
#
# Runs shard INDEX (0-based) of COUNT of the Catch2 v2 test cases BINARY selects with SPEC
# (e.g. "[.postgres]"): the cases in declaration order, every COUNT-th from INDEX, passed to
# BINARY through a file of test names (--input-file). ctest registers one test per shard
# (kakehashi_add_shards in cmake/KakehashiModule.cmake), so no single ctest test runs all of a
# large binary's cases and the shards can run in parallel; together they run every case once.
# Consecutive cases of a binary tend to cost alike (a suite's SQLite and PostgreSQL twins, the
# modes of one case file), and round robin spreads them over the shards.
# Each line of the file is a Catch2 test spec, not a plain name: a ',' would split it into
# alternatives and a '[...]' (the "[postgresql]" of a backend twin's name) would be read as a
# tag, so such a case would match nothing and be left out without a failure. These characters
# are escaped with '\', and the shard checks that the file selects exactly its cases.
# Exit status: BINARY's; 1 when the shard selects nothing or not exactly its cases (a spec,
# shard count or escaping gone wrong).
set -euo pipefail
bin=$1 spec=$2 index=$3 count=$4 out=${5:-${TMPDIR:-/tmp}}
mkdir -p "$out"
names="$out/$(basename "$bin")-shard-$index-of-$count.txt"
# (Catch2 v2 exits with the number of test cases listed.)
listed=$("$bin" "$spec" --list-test-names-only) || true
mine=$(awk -v i="$index" -v n="$count" 'NF && (NR - 1) % n == i' <<<"$listed")
if [[ -z $mine ]]; then
  echo "catch_shard: shard $index of $count selects no test case of $bin \"$spec\"" >&2
  exit 1
fi
sed 's/[][,\\]/\\&/g' <<<"$mine" >"$names"
selected=$("$bin" --input-file "$names" --list-test-names-only 2>/dev/null) || true
if [[ "$(sort <<<"$selected")" != "$(sort <<<"$mine")" ]]; then
  echo "catch_shard: the names file of shard $index of $count does not select exactly its" \
    "cases of $bin \"$spec\" (left out or added):" >&2
  diff <(sort <<<"$mine") <(sort <<<"$selected") >&2 || true
  exit 1
fi
exec "$bin" --input-file "$names" --order decl
