# syntax=docker/dockerfile:1
# One image for the four Tally services. The app is chosen at run time by APP (build arg sets the default):
#   docker build -t tally:dev .                       # APP defaults to ledger
#   docker build -t tally:dev --build-arg APP=notification .
#   docker run -e APP=usage-ingest -e PORT=3001 ... tally:dev
# Services run from source, as in development: ts-node (with swc, see tsconfig.json) + tsconfig-paths.
# ts-node, @swc/core and tsconfig-paths are devDependencies, so `npm ci` installs dev dependencies too.
# NOT BUILT OR RUN on the machine where it was written (no Docker engine there); see deploy/README.md.

ARG NODE_IMAGE=node:20-slim

# ── dependencies (cached while package*.json do not change) ─────────────────────────────────────────────
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# NODE_ENV is not "production" here on purpose: that would skip the devDependencies the runtime needs.
RUN npm ci --no-audit --no-fund \
 && npm cache clean --force

# ── runtime ─────────────────────────────────────────────────────────────────────────────────────────────
FROM ${NODE_IMAGE}
ARG APP=ledger
ENV APP=${APP} \
    NODE_ENV=production \
    KAFKAJS_NO_PARTITIONER_WARNING=1 \
    NX_DAEMON=false
WORKDIR /app

COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json package-lock.json tsconfig.json tsconfig.base.json .swcrc ./
COPY --chown=node:node libs ./libs
COPY --chown=node:node apps ./apps
# Rate card and plan catalogue (RATE_CARD_PATH / PLANS_PATH are relative to /app). In Kubernetes they can be
# replaced by mounting a ConfigMap over /app/config.
COPY --chown=node:node config ./config

# The official node image ships an unprivileged "node" user (uid 1000).
USER node

EXPOSE 3001 3002 3003 3004

# /health/ready: the service's PostgreSQL and Kafka reachable and its workers flowing (/health/live: the process answers). PORT falls back to the app's default port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
  CMD node -e "const p=process.env.PORT||{'usage-ingest':3001,ledger:3002,'subscription-cycle':3003,notification:3004}[process.env.APP];fetch('http://127.0.0.1:'+p+'/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"

# SIGTERM reaches node directly (exec): Nest's shutdown hooks stop the HTTP server and the Kafka consumers,
# which finish and commit the batch in flight before leaving their group.
STOPSIGNAL SIGTERM
# A larger young generation: fewer, cheaper scavenges on the hot paths (see libs/shared/src/testing/service-process.harness.ts).
ENV NODE_OPTIONS="--max-semi-space-size=32"
CMD ["sh", "-c", "case \"$APP\" in usage-ingest|ledger|subscription-cycle|notification) ;; *) echo \"APP must be usage-ingest, ledger, subscription-cycle or notification (got '$APP')\" >&2; exit 64;; esac; exec node -r ts-node/register -r tsconfig-paths/register \"apps/$APP/src/main.ts\""]
