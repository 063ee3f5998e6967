#!/usr/bin/env bash
# Keeps one service running (scripts/up.sh starts each service through it):
#   scripts/supervise.sh NAME RUN_DIR -- command [args...]
# The command's output goes to RUN_DIR/NAME.log and its pid to RUN_DIR/NAME.child.pid. When it exits for any
# reason but a stop (a crash, kill -9, an out-of-memory kill), it is started again and the restart is logged to
# the same file as one JSON line (pino's shape, level 40 = warn): exit status or signal, time it was up, the
# wait before the restart and the count. Quick crashes back off: 1 s, then 2, 4 ... up to 30 s; a run that
# stayed up 60 s resets the wait. SIGTERM or SIGINT to this script is a stop: it is passed to the command,
# which shuts down gracefully (consumers finish their batch), and this script exits when the command has.
set -uo pipefail

[ $# -ge 4 ] && [ "$3" = "--" ] || { echo "usage: $0 NAME RUN_DIR -- command [args...]" >&2; exit 64; }
name=$1 run=$2
shift 3
log="$run/$name.log"
mkdir -p "$run"

stopping=0 child=0 sleeper=0 restarts=0 backoff=1
stop() {
  stopping=1
  [ "$child" -gt 0 ] && kill -TERM "$child" 2>/dev/null
  [ "$sleeper" -gt 0 ] && kill "$sleeper" 2>/dev/null
}
trap stop TERM INT

record() { # level message extra-json-fields
  printf '{"level":%s,"time":%s,"service":"%s","supervisor":true,"msg":"%s"%s}\n' \
    "$1" "$(date +%s%3N)" "$name" "$2" "$3" >>"$log"
}

while :; do
  started=$(date +%s)
  "$@" >>"$log" 2>&1 &
  child=$!
  echo "$child" >"$run/$name.child.pid"
  # `wait` returns early when a trapped signal arrives; wait again until the command has really exited.
  status=0
  while :; do
    wait "$child"
    status=$?
    kill -0 "$child" 2>/dev/null || break
  done
  child=0
  rm -f "$run/$name.child.pid"
  up=$(($(date +%s) - started))
  if [ "$stopping" -eq 1 ]; then
    record 30 "stopped" ",\"exitStatus\":$status,\"upSeconds\":$up"
    exit 0
  fi
  [ "$up" -ge 60 ] && backoff=1
  restarts=$((restarts + 1))
  signal=""
  [ "$status" -gt 128 ] && signal=",\"signal\":\"$(kill -l $((status - 128)) 2>/dev/null || echo $((status - 128)))\""
  record 40 "exited; restarting" ",\"exitStatus\":$status$signal,\"upSeconds\":$up,\"restartInSeconds\":$backoff,\"restarts\":$restarts"
  sleep "$backoff" &
  sleeper=$!
  wait "$sleeper" 2>/dev/null
  sleeper=0
  [ "$stopping" -eq 1 ] && { record 30 "stopped" ",\"exitStatus\":$status,\"upSeconds\":$up"; exit 0; }
  backoff=$((backoff * 2 > 30 ? 30 : backoff * 2))
done
