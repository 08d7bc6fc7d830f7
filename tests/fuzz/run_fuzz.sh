#!/usr/bin/env bash
# run_fuzz.sh TARGET SOURCE_ROOT BUILD_DIR SECONDS [PREBUILT]
#
# Builds the libFuzzer target TARGET with clang in BUILD_DIR (a small standalone CMake project:
# tests/fuzz/CMakeLists.txt) unless PREBUILT names an executable, then runs it for SECONDS over
# tests/fuzz/seeds/<name>/ (name = TARGET without _fuzz). New corpus entries go to
# BUILD_DIR/corpus/<name>, crashes to BUILD_DIR/artifacts/ (reproduce: BUILD_DIR/TARGET FILE).
# Exit 77 (ctest: skipped) when clang or its fuzzer runtime is missing.
# SECONDS "build": only build it (the main build's hl7v2_fuzz_build target, so that the ctest
# test spends its time fuzzing, not compiling); exit 0 when clang or its runtime is missing.
set -euo pipefail
target=$1 root=$2 build=$3 seconds=$4 prebuilt=${5:-}
skip=77
[[ $seconds == build ]] && skip=0
name=${target%_fuzz}
seeds=$root/tests/fuzz/seeds/$name

if [[ -n $prebuilt && -x $prebuilt ]]; then
  fuzzer=$prebuilt
else
  if ! command -v clang++ >/dev/null 2>&1; then
    echo "SKIP: clang++ not found (tools/setup.sh installs clang and libclang-rt-14-dev)"
    exit $skip
  fi
  probe=$(mktemp -d)
  trap 'rm -rf "$probe"' EXIT
  printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long){return 0;}\n' \
    >"$probe/p.cpp"
  if ! clang++ -fsanitize=fuzzer "$probe/p.cpp" -o "$probe/p" >/dev/null 2>&1; then
    echo "SKIP: clang++ has no libFuzzer runtime (install libclang-rt-14-dev)"
    exit $skip
  fi
  generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  cmake -S "$root/tests/fuzz" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.configure.log" 2>&1 ||
    { cat "$build.configure.log"; exit 1; }
  cmake --build "$build" --target "$target" -j 2
  fuzzer=$build/$target
fi
[[ $seconds == build ]] && exit 0

mkdir -p "$build/corpus/$name" "$build/artifacts"
echo "running $target for ${seconds}s (seeds: $seeds)"
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$build/artifacts/" \
  "$build/corpus/$name" "$seeds"
