#!/usr/bin/env bash
# `kakehashi import ssmix2` on the command line: with several roots the issue locations name each
# root as given (decisions 0003, 0017: "ssmix2:<root>/<root-relative path>", a trailing '/'
# dropped), as convert's do; with one root they stay root-relative. `--io-uring off` reads with
# read(2) and writes the same issues and counts; a bad value is a usage error.
# Usage: import_cli_test.sh KAKEHASHI SOURCE_DIR WORK_DIR
set -euo pipefail
kakehashi=$1
case_dir=$2/tests/cases/ssmix2/two_roots_full_delta
work=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAILED: $*" >&2; exit 1; }
import() { "$kakehashi" import ssmix2 --facility 1312345679 --jobs 2 "$@"; }
full=$case_dir/full
delta=$case_dir/delta

import "$full" "$delta/" --db "sqlite:$work/two.sqlite" --issues "$work/two.json" \
  2>"$work/two.txt" || fail "exit code (two roots)"
grep -qF "\"ssmix2:$full/000/012/0000123456/" "$work/two.json" || fail "full root not named"
grep -qF "\"ssmix2:$delta/000/012/0000123456/" "$work/two.json" || fail "delta root not named"
! grep -qF '"ssmix2:000/' "$work/two.json" || fail "a root-relative location with two roots"
! grep -qF "$delta//" "$work/two.json" || fail "the trailing '/' of a root was kept"

import "$full" --db "sqlite:$work/one.sqlite" --issues "$work/one.json" 2>"$work/one.txt" ||
  fail "exit code (one root)"
grep -qF '"ssmix2:000/012/0000123456/' "$work/one.json" || fail "one root: not root-relative"
! grep -qF "ssmix2:$full" "$work/one.json" || fail "one root: the root is named"

import "$full" --io-uring off --db "sqlite:$work/off.sqlite" --issues "$work/off.json" \
  2>"$work/off.txt" || fail "exit code (--io-uring off)"
cmp "$work/one.json" "$work/off.json" || fail "--io-uring off: other issues"
# The summary without its timing line: the same counts.
diff <(grep -v ' in [0-9.]* s ' "$work/one.txt") <(grep -v ' in [0-9.]* s ' "$work/off.txt") ||
  fail "--io-uring off: other counts"

if import "$full" --io-uring maybe --db "sqlite:$work/bad.sqlite" 2>"$work/bad.txt"; then
  fail "--io-uring maybe accepted"
fi
grep -q -- "--io-uring must be on or off" "$work/bad.txt" || fail "no usage message"
echo "ok"
