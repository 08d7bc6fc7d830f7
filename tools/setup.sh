#!/usr/bin/env bash
# tools/setup.sh — install what kakehashi needs on Debian 12, non-interactively.
#
# Installs missing Debian packages (apt-get; needs root: otherwise prints the exact command and
# exits 2), then the pinned npm test oracles in tools/oracle (validator and peer benchmarks;
# never used by the product). Idempotent: does nothing when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost1.81-dev libboost-system1.81-dev
  rapidjson-dev libpugixml-dev libicu-dev libsqlite3-dev sqlite3 libpq-dev libssl-dev
  catch2 zlib1g-dev
  libmimalloc-dev
  clang clang-format clang-tidy libclang-rt-14-dev
  postgresql postgresql-contrib
  nodejs npm
  wrk
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# node/npm may come from outside Debian (e.g. a preinstalled Node 20): accept what works.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  tmp=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi

if ((${#missing[@]})); then
  cmd="apt-get install -y --no-install-recommends ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "kakehashi setup: missing Debian packages. Run as root:" >&2
    echo "  apt-get update && $cmd" >&2
    exit 2
  fi
  echo "kakehashi setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends ${missing[*]} >/dev/null
fi

# npm test oracles (pinned by package-lock.json).
if [[ -f tools/oracle/package-lock.json ]]; then
  if [[ ! -d tools/oracle/node_modules ]] || [[ tools/oracle/package-lock.json -nt tools/oracle/node_modules ]]; then
    echo "kakehashi setup: installing npm test oracles (tools/oracle)" >&2
    (cd tools/oracle && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    touch tools/oracle/node_modules
  fi
fi
