#!/usr/bin/env bash
# Stops the four services started by scripts/up.sh, then Kafka. Each pid file is a service's supervisor
# (scripts/supervise.sh): SIGTERM to it stops the service gracefully (consumers finish their batch) and no restart follows.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for pidfile in "$ROOT"/.cache/run/*.pid; do
  [ -f "$pidfile" ] || continue
  case "$pidfile" in *.child.pid) continue ;; esac   # the service itself: its supervisor stops it
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    echo "[down] stopping $(basename "$pidfile" .pid) (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$pidfile"
done
bash "$ROOT/scripts/infra.sh" down
