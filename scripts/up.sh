#!/usr/bin/env bash
# Brings the whole system up on this machine: PostgreSQL, Kafka (from Maven Central jars), topics, and the four
# services (each runs its own migrations at boot). Logs and pids go to .cache/run/. Stop with scripts/down.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUN="$ROOT/.cache/run"
mkdir -p "$RUN"

[ -d node_modules ] || npm ci --no-audit --no-fund
bash scripts/infra.sh up
source scripts/runtime.sh

# A development API key with every scope, made once and kept in .cache (only its hash is given to the services).
KEY_FILE="$RUN/dev-api-key"
[ -f "$KEY_FILE" ] || node -e "process.stdout.write(require('crypto').randomBytes(24).toString('base64url'))" > "$KEY_FILE"
API_KEY="$(cat "$KEY_FILE")"
HASH="$(node -e "process.stdout.write(require('crypto').createHash('sha256').update(process.argv[1]).digest('hex'))" "$API_KEY")"
export API_KEYS="[{\"name\":\"dev\",\"sha256\":\"$HASH\",\"scopes\":[\"admin\"]}]"
# The ledger's portal-token secret (issue 16), made once like the key; PORTAL_TOKEN_SECRET in the environment wins.
PORTAL_SECRET_FILE="$RUN/dev-portal-token-secret"
[ -f "$PORTAL_SECRET_FILE" ] || node -e "process.stdout.write(require('crypto').randomBytes(48).toString('base64url'))" > "$PORTAL_SECRET_FILE"
export PORTAL_TOKEN_SECRET="${PORTAL_TOKEN_SECRET:-$(cat "$PORTAL_SECRET_FILE")}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tally}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:${KAFKA_PORT:-9092}}"
export KAFKAJS_NO_PARTITIONER_WARNING=1

# Each service runs under scripts/supervise.sh, which restarts it when it crashes and logs the restart in its log
# ($RUN/<app>.log, a JSON line with "supervisor":true). $RUN/<app>.pid is the supervisor's pid (scripts/down.sh
# stops it, and it stops the service gracefully); $RUN/<app>.child.pid is the running service's.
# The credits page the ledger serves at /portal/ (apps/credits-page/dist; a few seconds with Vite).
npm run build:page --silent >/dev/null && echo "[up] credits page built (apps/credits-page/dist)"

start() { # app port
  local app=$1 port=$2 pidfile="$RUN/$1.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "[up] $app already running (supervisor pid $(cat "$pidfile"))"; return; fi
  : > "$RUN/$app.log"
  # The services' runtime flags and environment, as in the Dockerfile (libs/shared/src/testing/service-process.harness.ts says why).
  PORT=$port MALLOC_MMAP_THRESHOLD_=1048576 MALLOC_ARENA_MAX=2 nohup bash scripts/supervise.sh "$app" "$RUN" -- \
    node --max-semi-space-size=32 --heap-growing-percent=200 -r ts-node/register -r tsconfig-paths/register "apps/$app/src/main.ts" >/dev/null 2>&1 &
  echo $! > "$pidfile"
}
start usage-ingest 3001
start ledger 3002
start subscription-cycle 3003
start notification 3004

for pair in usage-ingest:3001 ledger:3002 subscription-cycle:3003 notification:3004; do
  app=${pair%%:*} port=${pair##*:}
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; then echo "[up] $app ready on http://127.0.0.1:$port (docs: /docs)"; continue 2; fi
    if [ "$(grep -c '"supervisor":true' "$RUN/$app.log")" -ge 3 ]; then
      tail -20 "$RUN/$app.log" >&2; echo "[up] $app keeps crashing at start (its supervisor goes on retrying; bash scripts/down.sh stops it); log: $RUN/$app.log" >&2; exit 1
    fi
    sleep 0.5
  done
  echo "[up] $app did not become healthy; log: $RUN/$app.log" >&2; exit 1
done

# The demo account and its credits page (scripts/demo.script.ts, written against @tally/client): seeded once, a
# fresh portal token each time. `bash scripts/up.sh --live` (or DEMO_LIVE=1) also keeps reporting usage for it.
demo() { TALLY_API_KEY="$API_KEY" node -r ts-node/register -r tsconfig-paths/register scripts/demo.script.ts "$@"; }
PAGE_URL="$(demo seed)" || { echo "[up] the demo account could not be set up (see above)" >&2; PAGE_URL=""; }
LIVE_NOTE="Add --live (bash scripts/up.sh --live) to have the demo account use credits every 2 s while you watch."
if [ "${1:-}" = "--live" ] || [ "${DEMO_LIVE:-0}" = "1" ]; then
  if [ -f "$RUN/demo.pid" ] && kill -0 "$(cat "$RUN/demo.pid")" 2>/dev/null; then
    LIVE_NOTE="The demo account's usage is already being reported (pid $(cat "$RUN/demo.pid"))."
  else
    TALLY_API_KEY="$API_KEY" nohup node -r ts-node/register -r tsconfig-paths/register scripts/demo.script.ts live > "$RUN/demo.log" 2>&1 &
    echo $! > "$RUN/demo.pid"
    LIVE_NOTE="The demo account uses credits every 2 s (log: $RUN/demo.log; bash scripts/down.sh stops it)."
  fi
fi

cat <<MSG

Tally is up. API key (admin scope, development only): $API_KEY

The credits page of the demo account (a portal token valid 24 h, read-only):
  $PAGE_URL
$LIVE_NOTE

Send usage:
  curl -s -X POST http://127.0.0.1:3001/v1/usage-events -H "Authorization: Bearer $API_KEY" -H 'content-type: application/json' \\
    -d '{"id":"u-1","accountId":"acct-1","occurredAt":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","feature":"chat","model":"gpt-4o","inputTokens":1200,"outputTokens":300}'
Or produce it to Kafka directly (key = account id; the envelope carries id, accountId and occurredAt, data the rest):
  echo 'acct-1|{"id":"u-2","type":"UsageRecorded","version":1,"accountId":"acct-1","occurredAt":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","data":{"feature":"chat","model":"gpt-4o","inputTokens":1200,"outputTokens":300}}' \\
    | java -cp '$ROOT/.cache/kafka/lib/*' org.apache.kafka.tools.ConsoleProducer --bootstrap-server $KAFKA_BROKERS --topic usage.events.v1 \\
        --property parse.key=true --property key.separator='|'
See the balance:
  curl -s http://127.0.0.1:3002/v1/accounts/acct-1/balance -H "Authorization: Bearer $API_KEY"
Logs: $RUN/*.log (a crashed service is restarted; the restart is a "supervisor":true line there)    Stop: bash scripts/down.sh
MSG
