# bench/gateway_lib.sh: shell helpers shared by the gateway benchmarks (sourced, not run).
# Sets nothing on its own; the functions read $bench_name (for messages) and $postmaster.

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_up PORT: wait (up to 10 min, loading can be long) until the server answers a read.
wait_up() {
  for _ in $(seq 1 1200); do
    curl -sf -o /dev/null "http://127.0.0.1:$1/fhir/Patient/p0" && return 0
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
