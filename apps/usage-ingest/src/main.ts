import 'reflect-metadata';
import { bootstrapHttpApp, loadConfig } from '@tally/shared';
import { UsageIngestConfig } from './config/usage-ingest.config';
import { UsageIngestModule } from './usage-ingest.module';
import { USAGE_INGEST_STATUS_BY_CODE } from './usage-ingest.errors';

async function main() {
  const config = loadConfig(UsageIngestConfig);
  await bootstrapHttpApp(UsageIngestModule.forRoot(config), {
    service: 'usage-ingest',
    title: 'Tally usage-ingest',
    config,
    statusByCode: USAGE_INGEST_STATUS_BY_CODE,
    bodyLimit: config.BODY_LIMIT,
  });
}

main().catch((error) => {
  console.error(JSON.stringify({ level: 'fatal', service: 'usage-ingest', msg: 'failed to start', err: String(error) }));
  process.exit(1);
});
