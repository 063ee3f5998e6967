#!/usr/bin/env bash
# Compiles the four services and the libraries to JavaScript in dist/ (npm run build): swc (the compiler the
# tests and ts-node already use, with decorator metadata for NestJS) turns each TypeScript file into CommonJS,
# then tsc-alias rewrites the @tally/* path aliases into relative requires, so `node dist/apps/<app>/src/main.js`
# runs with production dependencies only (no ts-node, swc or tsconfig-paths at run time). Tests and test
# support (`*.spec.ts`, `testing/` folders) are left out. Type-checking is `npm run typecheck`, not this.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rm -rf dist
# apps/credits-page is browser code, bundled by Vite instead (npm run build:page, into apps/credits-page/dist).
npx swc $(ls -d apps/*/src libs/*/src | grep -v '^apps/credits-page/') -d dist --config-file .swcrc --ignore '**/*.spec.ts,**/testing/**' --quiet
npx tsc-alias -p tsconfig.build.json
echo "[build] $(find dist -name '*.js' | wc -l) files in dist/ (node dist/apps/<app>/src/main.js)"
