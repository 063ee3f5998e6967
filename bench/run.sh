#!/usr/bin/env bash
# One command for the benchmarks: `npm run bench` (or `bash bench/run.sh`).
# Makes sure Kafka and PostgreSQL are up (scripts/infra.sh up when not), then runs bench/main.ts, which
# measures the raw limits and the service figures in the same run and writes .cache/bench/last.json.
# Knobs: BENCH_EVENTS [100000]  BENCH_SECONDS [10]  BENCH_ACCOUNTS [1000]  BENCH_PARTITIONS [6]
#        BENCH_RUNTIME [compiled | source]  BENCH_KAFKA_RECORDS [200000]  BENCH_LATENCY_RATE [derived]  BENCH_ONLY [all: raw,parse,store,append,projection,throughput,latency,curve,authz,httppath,coldload,scale,ingest]  BENCH_SCALE_ACCOUNTS [100000,1000000]
#        BENCH_PROJECTION_BATCH [500] (usage events per transaction in the projection phase)
#        BENCH_LEDGER_WORKERS [commands,relay]  BENCH_PROJECTOR_WORKERS [projection] (the two ledger processes' WORKERS)
# A development run at small scale: BENCH_EVENTS=10000 BENCH_SECONDS=3 BENCH_KAFKA_RECORDS=20000 bash bench/run.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
KAFKA_PORT="${KAFKA_PORT:-9092}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:${KAFKA_PORT}}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tally_test}"

say() { printf '[bench] %s\n' "$*"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

[ -d node_modules ] || { say "node_modules missing: run npm ci first"; exit 1; }
[ -d .cache/kafka/lib ] || NEED_INFRA=1
if ! port_open "$KAFKA_PORT" || ! pg_isready -q -h 127.0.0.1 -p 5432 || [ -n "${NEED_INFRA:-}" ]; then
  say "infrastructure not up: bash scripts/infra.sh up"
  bash scripts/infra.sh up
fi

# The peers the bench measures Tally against (Emmett's event store) live apart from the product's dependencies.
[ -d bench/peers/node_modules ] || npm ci --prefix bench/peers --no-audit --no-fund --silent
source scripts/runtime.sh
# The services run as the Docker image runs them, compiled (BENCH_RUNTIME=source: through ts-node instead).
[ "${BENCH_RUNTIME:-compiled}" = source ] || bash scripts/build.sh
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
exec node -r ts-node/register -r tsconfig-paths/register bench/main.ts
