#!/usr/bin/env bash
# make run: the main job on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
"$build/kakehashi" --version
