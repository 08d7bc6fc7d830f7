# bench/gateway_lib.sh: shell helpers shared by the gateway benchmarks (sourced, not run).
# Sets nothing on its own; the functions read $bench_name (for messages) and $postmaster.

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_up PORT [PATH [TRIES]]: wait (TRIES half seconds, default 1200: loading can be long) until
# the server answers a read of PATH (default /fhir/Patient/p0).
wait_up() {
  for _ in $(seq 1 "${3:-1200}"); do
    curl -sf -o /dev/null "http://127.0.0.1:$1${2:-/fhir/Patient/p0}" && return 0
    sleep 0.5
  done
  echo "$bench_name: server on $1 did not come up" >&2
  exit 1
}

# CPU ticks (user + sys) of a PostgreSQL cluster: the postmaster $postmaster (its own and its
# reaped children's) plus its live children (backends, walwriter, checkpointer, ...). Field 2
# (comm) has no spaces for postgres processes ("(postgres)").
cluster_ticks() {
  local total
  total=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$postmaster/stat")
  for stat in /proc/[0-9]*/stat; do
    { read -r -a f <"$stat"; } 2>/dev/null || continue
    [[ ${f[3]:-} == "$postmaster" ]] && total=$((total + f[13] + f[14]))
  done
  echo "$total"
}

# The 1-minute load average (the machine is shared: printed with every figure).
loadavg() { cut -d' ' -f1 /proc/loadavg; }

# CPU ticks (user + sys) of process PID, from /proc/PID/stat.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run_wrk URL PID [SCRIPT]: wrk -t2 -c50 for $duration (default 10s) against URL (with SCRIPT's
# requests if given; $wrk_timeout, if set, as wrk's --timeout); prints "req/s p99-ms non-2xx load
# CPU-us-per-request": the load average taken right before the run and the CPU (user+sys) of
# server PID over it per request.
run_wrk() {
  local out load t0 t1 rps p99 non2xx reqs cpu_us
  local script=()
  [[ -n ${3:-} ]] && script=(-s "$3")
  [[ -n ${wrk_timeout:-} ]] && script+=(--timeout "$wrk_timeout")
  load=$(loadavg)
  t0=$(cpu_ticks "$2")
  out=$(wrk -t2 -c50 -d"${duration:-10s}" --latency "${script[@]}" "$1" 2>&1)
  t1=$(cpu_ticks "$2")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu_us=$(awk -v a="$t0" -v b="$t1" -v n="${reqs:-0}" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {if (n > 0) printf "%.1f", (b - a) * 1e6 / hz / n; else print "?"}')
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  echo "$rps ${p99:-?} ${non2xx:-0} $load $cpu_us"
}

# bench_tmp PREFIX: a temporary directory in $tmp, removed on exit with the processes in
# ${pids[@]} (killed) and the PostgreSQL cluster of $pg_state if set (tools/pg_test_server.sh).
bench_tmp() {
  tmp=$(mktemp -d "/tmp/$1.XXXXXX")
  pids=()
  pg_state=
  trap bench_cleanup EXIT
}
bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n $pg_state ]] && tools/pg_test_server.sh stop "$pg_state" >/dev/null 2>&1
  rm -rf "$tmp"
}
