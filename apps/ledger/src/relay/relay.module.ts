import { Module } from '@nestjs/common';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { EventStore } from '@tally/event-store';
import { KafkaProducer } from '@tally/kafka';
import { AccountsModule } from '../accounts/accounts.module';
import { LedgerConfig } from '../config/ledger.config';
import { EVENT_STORE, LOGGER, PG_POOL } from '../database/tokens.provider';
import { BackgroundWorkers } from '../workers/background.worker';
import { WorkersModule } from '../workers/workers.module';
import { LedgerEventsRelay } from './ledger-events.relay';

/** The event store → ledger.events.v1, in commit order (run when WORKERS names `relay`). */
@Module({
  imports: [AccountsModule, WorkersModule],
  providers: [
    {
      provide: LedgerEventsRelay,
      inject: [EVENT_STORE, PG_POOL, KafkaProducer, LedgerConfig, LOGGER, BackgroundWorkers],
      useFactory: (store: EventStore, pool: Pool, producer: KafkaProducer, config: LedgerConfig, logger: Logger, workers: BackgroundWorkers) => {
        const relay = new LedgerEventsRelay({ store, pool, producer, config, logger: logger.child({ worker: 'relay' }) });
        workers.add('relay', relay, config.runs('relay'));
        return relay;
      },
    },
  ],
})
export class RelayModule {}
