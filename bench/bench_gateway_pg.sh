#!/usr/bin/env bash
# bench/bench_gateway_pg.sh [BUILD_DIR] [N] [ROUNDS]
#
# The gateway's write path on PostgreSQL: the commit queue (`group`, decision 0015: one commit
# thread, the requests of a group in one transaction) against one transaction per Bundle on two
# threads (`handle`: Handler::Handle, what `serve --commit-queue 0` does), each with libpq's
# pipeline mode (decision 0028) and without it (`-nopipe`, one round trip per statement), in the
# same run, against a throwaway PostgreSQL 15 cluster (tools/pg_test_server.sh: fsync=off,
# synchronous_commit=off). MODES="group handle" picks settings.
# Each run posts N (default 2000) transaction Bundles of BUNDLE_SIZE (default 1) Observation
# POSTs through bench_gateway_tx (no validator, 2 threads; `group` keeps 50 in flight as wrk's
# connections do) into a fresh database; ROUNDS (default 3) alternate the settings.
# Printed per run: tx/s, client CPU per Bundle (bench_gateway_tx) and server CPU per Bundle (user
# + sys of the postmaster, its live children and its reaped children, /proc), with the 1-minute
# load average before the run: on a shared machine CPU per Bundle is the comparable figure.
# PG_SETTINGS="-c synchronous_commit=on" adds server settings (e.g. to see durable commits) after
# those of tools/pg_test_server.sh, the one place that sets the cluster's settings.
# BASE_TX=path/to/another/bench_gateway_tx adds its `base-handle` and `base-group` runs (an older
# build, for before/after in the same run; it is given no `nopipeline`).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
n=${2:-2000}
rounds=${3:-3}
size=${BUNDLE_SIZE:-1}
tx="$build/bench/bench_gateway_tx"
[[ -x $tx ]] || { echo "bench_gateway_pg: build $tx first" >&2; exit 2; }
bindir=${KAKEHASHI_PG_BINDIR:-/usr/lib/postgresql/15/bin}
[[ -x $bindir/postgres ]] || { echo "bench_gateway_pg: PostgreSQL 15 not found (tools/setup.sh)" >&2; exit 2; }

state=$(mktemp -d /tmp/kakehashi-bench-pg.XXXXXX)
# The cluster on disk as in earlier runs of this benchmark (the test suite's goes to /dev/shm).
export KAKEHASHI_PG_TMP=${KAKEHASHI_PG_TMP:-/tmp}
cleanup() {
  tools/pg_test_server.sh stop "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
url=$(KAKEHASHI_PG_SETTINGS=${PG_SETTINGS:-} tools/pg_test_server.sh start "$state")
datadir="$(cat "$state/datadir")/data"
postmaster=$(head -1 "$datadir/postmaster.pid")
host=$(dirname "$datadir")
port=${url##*:}; port=${port%%/*}

python3 bench/gen_tx_bundle.py "$size" "$state/tx.json"

hz=$(getconf CLK_TCK)
# shellcheck source=bench/gateway_lib.sh
source bench/gateway_lib.sh

run=0
printf "%-14s %8s %14s %14s %6s %s\n" "setting" "tx/s" "client ms/tx" "server ms/tx" "load" "groups"
for ((r = 1; r <= rounds; ++r)); do
  modes=${MODES:-handle-nopipe group-nopipe handle group}
  [[ -n ${BASE_TX:-} ]] && modes="base-handle base-group $modes"
  for mode in $modes; do
    run=$((run + 1))
    db="kk_bench_$run"
    if [[ $(id -u) -eq 0 ]]; then
      runuser -u "$(stat -c %U "$datadir")" -- "$bindir/createdb" -h "$host" -p "$port" -U kakehashi "$db"
    else
      "$bindir/createdb" -h "$host" -p "$port" -U kakehashi "$db"
    fi
    u="${url%/*}/$db"
    # The store's schema is created first (not measured).
    bin=$tx
    [[ $mode == base-* ]] && bin=$BASE_TX
    "$bin" "$u" "$state/tx.json" 2 1 novalidate >/dev/null
    load=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(cluster_ticks)
    args=("$u" "$state/tx.json" "$n" 2 novalidate)
    [[ $mode == group* || $mode == base-group ]] && args+=(group)
    [[ $mode == *-nopipe ]] && args+=(nopipeline)
    out=$("$bin" "${args[@]}")
    sleep 0.3  # the backends exit and are reaped (their CPU moves to the postmaster)
    t1=$(cluster_ticks)
    rate=$(sed -n 's/.*: \([0-9.]*\) tx\/s.*/\1/p' <<<"$out" | head -1)
    client=$(sed -n 's/.*CPU \([0-9.]*\) ms per transaction.*/\1/p' <<<"$out" | head -1)
    server=$(awk -v a="$t0" -v b="$t1" -v n="$((n - 1))" -v hz="$hz" 'BEGIN {printf "%.3f", (b - a) * 1000 / hz / n}')
    groups=$(sed -n 's/.*: \([0-9]* groups, [0-9.]* Bundles per group\).*/\1/p' <<<"$out")
    printf "%-14s %8s %14s %14s %6s %s\n" "$mode" "$rate" "$client" "$server" "$load" "$groups"
  done
done
echo "bench_gateway_pg: $n Bundles of $size Observation(s) per run, 2 threads, no validator; $(nproc) cores; load now $(cut -d' ' -f1-3 /proc/loadavg)"
