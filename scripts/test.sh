#!/usr/bin/env bash
# The one test command (README): type-check, lint (project boundaries included), unit tests, then the
# integration and end-to-end tests against the real Kafka broker and PostgreSQL (scripts/infra.sh up first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export KAFKAJS_NO_PARTITIONER_WARNING=1
# The broker scripts/infra.sh started (KAFKA_PORT, default 9092) unless KAFKA_BROKERS says otherwise.
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:${KAFKA_PORT:-9092}}"
mkdir -p .cache/test-results
rm -f .cache/test-results/*.json   # a runner that dies must count as failed, not as the last run's figures

# Works on a fresh clone: installs dependencies and starts PostgreSQL + Kafka if needed (idempotent, seconds).
[ -d node_modules ] || npm ci --no-audit --no-fund
bash scripts/infra.sh up
ROOT="$PWD" && source scripts/runtime.sh

echo "== type-check"
npx tsc -p tsconfig.json --noEmit
npx tsc -p apps/credits-page/tsconfig.json --noEmit   # the credits page (browser code, DOM types)

echo "== credits page build (apps/credits-page/dist: the ledger serves it, the browser tests load it)"
npm run build:page --silent

echo "== lint"
npx nx show projects >/dev/null   # builds the project graph the boundary rule reads
npx eslint .

echo "== unit tests"
unit=0
npx jest --selectProjects unit --json --outputFile=.cache/test-results/unit.json || unit=$?

echo "== integration tests (real Kafka, real PostgreSQL)"
int=0
npx jest --selectProjects int --runInBand --json --outputFile=.cache/test-results/int.json || int=$?

echo "== end-to-end tests (real service processes, HTTP, Kafka, PostgreSQL, SMTP)"
e2e=0
npx jest --selectProjects e2e --runInBand --json --outputFile=.cache/test-results/e2e.json || e2e=$?

node -e '
  const r = ["unit", "int", "e2e"].map((n) => { try { return require(`./.cache/test-results/${n}.json`); } catch { return { numPassedTests: 0, numFailedTests: 1, numRuntimeErrorTestSuites: 1 }; } });
  const sum = (key) => r.reduce((s, x) => s + (x[key] ?? 0), 0);
  console.log(`tests: ${sum("numPassedTests")} passed, ${sum("numFailedTests")} failed, ${sum("numPendingTests")} skipped; test files that failed to run: ${sum("numRuntimeErrorTestSuites")}`);
'
[ "$unit" -eq 0 ] && [ "$int" -eq 0 ] && [ "$e2e" -eq 0 ]
