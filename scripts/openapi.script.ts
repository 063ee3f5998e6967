import 'reflect-metadata';
/**
 * Writes docs/openapi.json: the public API of the four services in one OpenAPI 3 document (each service still
 * serves its own at /docs, JSON at /docs-json). `--check` writes nothing and exits 1 when the committed file is
 * stale (libs/shared/test/public-openapi.unit.spec.ts runs it). No service, broker or database is needed: the
 * documents come from Nest's preview mode (see previewOpenApiDocument).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { hashApiKey, loadConfig, mergeOpenApiDocuments, previewOpenApiDocument } from '@tally/shared';
import { LedgerConfig } from '../apps/ledger/src/config/ledger.config';
import { LedgerModule } from '../apps/ledger/src/ledger.module';
import { NotificationConfig } from '../apps/notification/src/config/notification.config';
import { buildNotificationModule } from '../apps/notification/src/notification.module';
import { SubscriptionCycleConfig } from '../apps/subscription-cycle/src/config/subscription-cycle.config';
import { createSubscriptionCycleModule } from '../apps/subscription-cycle/src/subscription-cycle.module';
import { UsageIngestConfig } from '../apps/usage-ingest/src/config/usage-ingest.config';
import { UsageIngestModule } from '../apps/usage-ingest/src/usage-ingest.module';

export const PUBLIC_OPENAPI_PATH = resolve(__dirname, '../docs/openapi.json');

/** Config that validates; preview mode connects to nothing, so the addresses are never used. */
const env = {
  DATABASE_URL: 'postgres://openapi@127.0.0.1:1/openapi',
  KAFKA_BROKERS: '127.0.0.1:1',
  API_KEYS: JSON.stringify([{ name: 'openapi', sha256: hashApiKey('openapi'), scopes: ['admin'] }]),
  LOG_LEVEL: 'silent',
};

export async function publicOpenApiDocument(): Promise<string> {
  const documents = [
    await previewOpenApiDocument(UsageIngestModule.forRoot(loadConfig(UsageIngestConfig, env)), { service: 'usage-ingest', title: 'Tally usage-ingest' }),
    await previewOpenApiDocument(LedgerModule.forRoot(loadConfig(LedgerConfig, env)), { service: 'ledger', title: 'Tally ledger' }),
    await previewOpenApiDocument(createSubscriptionCycleModule({ config: loadConfig(SubscriptionCycleConfig, env) }), { service: 'subscription-cycle', title: 'Tally subscription-cycle' }),
    await previewOpenApiDocument(buildNotificationModule({ config: loadConfig(NotificationConfig, env) }), { service: 'notification', title: 'Tally notification' }),
  ];
  const merged = mergeOpenApiDocuments(
    {
      title: 'Tally',
      version: '1',
      description:
        'The public HTTP API of Tally: usage-ingest (usage events), ledger (balance, authorizations and holds, grants, purchases, history), ' +
        'subscription-cycle (plans, subscriptions) and notification (settings, delivery log). Each operation is tagged with the service that ' +
        'serves it. Every error is `{code, message, details?}` with a stable `code`; amounts are decimal strings of credits.',
    },
    documents,
  );
  return `${JSON.stringify(merged, null, 2)}\n`;
}

async function main(): Promise<void> {
  const document = await publicOpenApiDocument();
  if (process.argv.includes('--check')) {
    const committed = readFileSync(PUBLIC_OPENAPI_PATH, 'utf8');
    if (committed !== document) {
      console.error('docs/openapi.json is stale: run `npm run openapi` and commit it');
      process.exit(1);
    }
    console.log('docs/openapi.json is up to date');
    return;
  }
  writeFileSync(PUBLIC_OPENAPI_PATH, document);
  console.log(`wrote ${PUBLIC_OPENAPI_PATH}`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
