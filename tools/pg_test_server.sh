#!/usr/bin/env bash
# tools/pg_test_server.sh start|stop|url STATE_DIR
#
# A throwaway PostgreSQL 15 cluster for the test suites: initdb in a fresh temp directory, a free
# TCP port on 127.0.0.1 and a unix socket in the temp directory, database "kakehashi_test".
# STATE_DIR/url receives a libpq URL; STATE_DIR/datadir remembers the cluster for `stop`.
# Root cannot run postgres: as root the cluster runs as the unprivileged `postgres` user (from the
# Debian package) or `nobody`. ctest runs start/stop as FIXTURES_SETUP/CLEANUP (tests/gateway).
# The server settings are set here only (settings() below: fsync off, no autovacuum, ...);
# KAKEHASHI_PG_SETTINGS="-c name=value ..." adds settings after them (a later one wins), as
# bench/bench_gateway_pg.sh's PG_SETTINGS does.
set -euo pipefail
cmd=${1:-}
state=${2:-}
if [[ -z $cmd || -z $state ]]; then
  echo "usage: $0 start|stop|url STATE_DIR" >&2
  exit 2
fi
bindir=${KAKEHASHI_PG_BINDIR:-/usr/lib/postgresql/15/bin}

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u "$owner" -- "$@"
  else
    "$@"
  fi
}

# Where the cluster lives: KAKEHASHI_PG_TMP, else /dev/shm when it has room (a tmpfs: the test
# schemas' thousands of small files are created and removed without disk writes), else /tmp.
cluster_parent() {
  if [[ -n ${KAKEHASHI_PG_TMP:-} ]]; then
    echo "$KAKEHASHI_PG_TMP"
  elif [[ -d /dev/shm && -w /dev/shm ]] &&
    (($(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}') > 4 * 1024 * 1024)); then
    echo /dev/shm
  else
    echo /tmp
  fi
}

# The cluster's settings (postgres command-line options after -p and -k): no durability (the data
# is thrown away), no background vacuum, minimal WAL; then KAKEHASHI_PG_SETTINGS.
settings() {
  echo "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    "-c max_connections=200 -c autovacuum=off -c wal_level=minimal -c max_wal_senders=0" \
    "${KAKEHASHI_PG_SETTINGS:-}"
}

owner=$(id -un)
if [[ $(id -u) -eq 0 ]]; then
  if id postgres >/dev/null 2>&1; then owner=postgres; else owner=nobody; fi
fi

case $cmd in
  start)
    if [[ ! -x $bindir/initdb ]]; then
      echo "pg_test_server: $bindir/initdb not found (tools/setup.sh installs postgresql)" >&2
      exit 2
    fi
    mkdir -p "$state"
    if [[ -f $state/datadir ]]; then "$0" stop "$state" || true; fi
    tmp=$(mktemp -d "$(cluster_parent)/kakehashi-pg.XXXXXX")
    chmod 755 "$tmp"
    [[ $(id -u) -eq 0 ]] && chown "$owner" "$tmp"
    # A free port: ask the kernel for one and release it (tiny race, acceptable for tests).
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null \
           || echo $((20000 + RANDOM % 20000)))
    as_owner "$bindir/initdb" -D "$tmp/data" -U kakehashi --auth=trust -E UTF8 --locale=C --no-sync >"$tmp/initdb.log" 2>&1 \
      || { cat "$tmp/initdb.log" >&2; exit 1; }
    as_owner "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 \
      -o "-p $port -k $tmp $(settings)" \
      start >/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
    as_owner "$bindir/createdb" -h "$tmp" -p "$port" -U kakehashi kakehashi_test
    echo "$tmp" >"$state/datadir"
    echo "postgresql://kakehashi@127.0.0.1:$port/kakehashi_test" >"$state/url"
    cat "$state/url"
    ;;
  stop)
    [[ -f $state/datadir ]] || exit 0
    tmp=$(cat "$state/datadir")
    if [[ -d $tmp/data ]]; then
      as_owner "$bindir/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp" "$state/datadir" "$state/url"
    ;;
  url)
    cat "$state/url"
    ;;
  *)
    echo "usage: $0 start|stop|url STATE_DIR" >&2
    exit 2
    ;;
esac
