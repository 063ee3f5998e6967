#!/usr/bin/env bash
# Local infrastructure without Docker: a single-node Apache Kafka 4.x broker (KRaft) run from Maven Central
# jars with this machine's Java 17, and the local PostgreSQL 15 server.
#   scripts/infra.sh up|down|status|logs
# Idempotent: `up` twice is harmless. Jars, broker storage and logs live in .cache/ (git-ignored), so the
# second start needs no network. Environment knobs (defaults in brackets):
#   KAFKA_PORT [9092]  KAFKA_CONTROLLER_PORT [9093]  KAFKA_PARTITIONS [6]  KAFKA_HEAP [1g]
#   PGHOST [127.0.0.1]  PGPORT [5432]  PGUSER [postgres]  TALLY_DATABASES ["tally tally_test"]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache/kafka"
LIB="$CACHE/lib"
DATA="$CACHE/data"
CONF="$CACHE/server.properties"
LOG="$CACHE/server.log"
PIDFILE="$CACHE/kafka.pid"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_PARTITIONS="${KAFKA_PARTITIONS:-6}"
KAFKA_HEAP="${KAFKA_HEAP:-1g}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
TALLY_DATABASES="${TALLY_DATABASES:-tally tally_test}"

say() { printf '[infra] %s\n' "$*"; }
die() { printf '[infra] error: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: $2"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

kafka_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

fetch_jars() {
  if [ -f "$CACHE/.jars-ok" ] && ls "$LIB"/kafka_2.13-*.jar >/dev/null 2>&1; then return; fi
  need java "Kafka 4.x needs Java 17 (apt-get install openjdk-17-jre-headless)"
  need mvn "the Kafka jars are fetched from Maven Central with Maven (apt-get install maven)"
  say "fetching Kafka jars from Maven Central into $LIB (first start only)"
  mkdir -p "$LIB"
  mvn -B -q -f "$ROOT/infra/kafka/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIB" || die "Maven could not fetch the Kafka jars (is Maven Central reachable?)"
  touch "$CACHE/.jars-ok"
}

write_config() {
  mkdir -p "$DATA"
  cat > "$CONF" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${KAFKA_CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT},CONTROLLER://127.0.0.1:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${DATA}
num.partitions=${KAFKA_PARTITIONS}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.message.timestamp.type=LogAppendTime
log.retention.hours=168
PROPS
}

java_cp() { echo "$LIB/*"; }

start_kafka() {
  if kafka_pid >/dev/null; then say "Kafka already running (pid $(kafka_pid)) on 127.0.0.1:${KAFKA_PORT}"; return; fi
  if port_open "$KAFKA_PORT"; then say "something already listens on ${KAFKA_PORT}; assuming it is a Kafka broker"; return; fi
  need java "Kafka 4.x needs Java 17"
  fetch_jars
  write_config
  if [ ! -f "$DATA/meta.properties" ]; then
    local id; id="$(java -cp "$(java_cp)" kafka.tools.StorageTool random-uuid)"
    say "formatting KRaft storage (cluster id $id)"
    java -cp "$(java_cp)" -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2.properties" \
      kafka.tools.StorageTool format -t "$id" -c "$CONF" --ignore-formatted >/dev/null
  fi
  local started; started=$(date +%s%N)
  say "starting Kafka on 127.0.0.1:${KAFKA_PORT}"
  : > "$LOG"
  # A session of its own (setsid): the broker must outlive whatever started it. Left in the caller's process group, a
  # signal to that group (a CI step or a tool timeout ending a job with `kill -- -PGID`, `timeout`) killed it
  # mid-run with no shutdown. The pid is written by the process that then becomes the broker (exec).
  rm -f "$PIDFILE"
  setsid bash -c 'echo $$ > "$1"; shift; exec "$@"' _ "$PIDFILE" \
    java -Xms256m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2.properties" \
    -cp "$(java_cp)" kafka.Kafka "$CONF" </dev/null >>"$LOG" 2>&1 &
  for _ in $(seq 1 50); do [ -s "$PIDFILE" ] && break; sleep 0.1; done
  for _ in $(seq 1 120); do
    if grep -q "Kafka Server started" "$LOG" 2>/dev/null; then
      say "Kafka ready in $(( ($(date +%s%N) - started) / 1000000 )) ms"
      return
    fi
    kafka_pid >/dev/null || { tail -30 "$LOG" >&2; die "Kafka exited during start; log: $LOG"; }
    sleep 0.5
  done
  tail -30 "$LOG" >&2
  die "Kafka did not start within 60 s; log: $LOG"
}

stop_kafka() {
  local pid
  if pid="$(kafka_pid)"; then
    say "stopping Kafka (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  else
    say "Kafka is not running"
  fi
  rm -f "$PIDFILE"
}

start_postgres() {
  need psql "the PostgreSQL client is needed (apt-get install postgresql-client)"
  if ! pg_isready -q -h "$PGHOST" -p "$PGPORT"; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
      say "PostgreSQL is down; starting the local cluster"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
      for _ in $(seq 1 30); do pg_isready -q -h "$PGHOST" -p "$PGPORT" && break; sleep 0.5; done
    fi
  fi
  pg_isready -q -h "$PGHOST" -p "$PGPORT" || die "PostgreSQL is not reachable on $PGHOST:$PGPORT (apt-get install postgresql)"
  for db in $TALLY_DATABASES; do
    if [ -z "$(psql -d postgres -tAc "select 1 from pg_database where datname='$db'")" ]; then
      say "creating database $db"
      psql -d postgres -qc "create database \"$db\""
    fi
  done
}

provision() {
  # Topics and migrations need the project's node_modules (npm ci).
  if [ ! -d "$ROOT/node_modules" ]; then say "node_modules missing: run npm ci, then scripts/infra.sh up again to create topics and run migrations"; return; fi
  ( cd "$ROOT" && KAFKA_BROKERS="127.0.0.1:${KAFKA_PORT}" KAFKA_PARTITIONS="$KAFKA_PARTITIONS" \
      node -r ts-node/register -r tsconfig-paths/register scripts/provision.script.ts )
}

case "${1:-}" in
  up)
    start_postgres
    start_kafka
    provision
    ;;
  down) stop_kafka ;;
  status)
    if pid="$(kafka_pid)"; then say "Kafka running (pid $pid) on 127.0.0.1:${KAFKA_PORT}"; else say "Kafka stopped"; fi
    if pg_isready -q -h "$PGHOST" -p "$PGPORT"; then say "PostgreSQL up on $PGHOST:$PGPORT"; else say "PostgreSQL down"; fi
    ;;
  logs) tail -n "${2:-100}" -f "$LOG" ;;
  *) echo "usage: scripts/infra.sh up|down|status|logs" >&2; exit 2 ;;
esac
