import 'reflect-metadata';
import { bootstrapHttpApp, loadConfig } from '@tally/shared';
import { LedgerConfig } from './config/ledger.config';
import { LEDGER_STATUS_BY_CODE } from './ledger.errors';
import { LedgerModule } from './ledger.module';
import { portalHttpOptions } from './mint-portal-token/portal-access.provider';
import { HISTORY_STATUS_BY_CODE } from './read-models/history/history.errors';
import { ledgerMicroservices } from './workers/ledger.kafka.transport';

async function main() {
  const config = loadConfig(LedgerConfig);
  await bootstrapHttpApp(LedgerModule.forRoot(config), {
    service: 'ledger',
    title: 'Tally ledger',
    config,
    statusByCode: { ...HISTORY_STATUS_BY_CODE, ...LEDGER_STATUS_BY_CODE },
    // The Kafka controllers (usage, subscriptions, projection) on libs/kafka's KafkaBatchTransport.
    microservices: ledgerMicroservices,
    // Portal tokens on the read routes, and the origins allowed to call them from a browser.
    ...portalHttpOptions(config),
  });
}

main().catch((error) => {
  console.error(JSON.stringify({ level: 'fatal', service: 'ledger', msg: 'failed to start', err: String(error) }));
  process.exit(1);
});
