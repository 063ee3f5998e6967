#!/usr/bin/env bash
# One command for the fault run: `npm run chaos` (or `bash chaos/run.sh`). It starts a PostgreSQL and a Kafka
# broker of its own (the jars scripts/infra.sh fetched), the four services as real processes, an SMTP sink and a
# webhook receiver; nothing else on the machine is touched. Knobs: CHAOS_SEED, CHAOS_EVENTS [200000],
# CHAOS_ACCOUNTS [400], CHAOS_FAULTS [13], CHAOS_SHORT=1 (the CI size), CHAOS_DEADLINE_SECONDS, CHAOS_LAG_BOUND_SECONDS,
# CHAOS_KEEP_LOGS=1. Replay a run: CHAOS_SEED=<printed seed> (with the printed sizes) npm run chaos
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf '[chaos] %s\n' "$*"; }

[ -d node_modules ] || { say "node_modules missing: run npm ci first"; exit 1; }
# The private broker runs from the Kafka jars scripts/infra.sh downloads once.
[ -d .cache/kafka/lib ] || bash scripts/infra.sh up

source scripts/runtime.sh
say "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
export KAFKAJS_NO_PARTITIONER_WARNING=1
exec node -r ts-node/register -r tsconfig-paths/register chaos/main.ts
