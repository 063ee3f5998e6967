import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Pool } from 'pg';
import { createEventStore, type EventStore } from '@tally/event-store';
import { LedgerConfig } from '../config/ledger.config';
import { EVENT_STORE, PG_POOL } from '../database/tokens.provider';
import { AccountRepository } from './account.repository';

/**
 * The account aggregate's persistence, shared by every write-side use case: the event store (PostgreSQL, or
 * EventStoreDB), the codec of its events and the AccountRepository that decides and appends.
 */
@Module({
  providers: [
    {
      provide: EVENT_STORE,
      inject: [LedgerConfig, PG_POOL],
      useFactory: (config: LedgerConfig, pool: Pool) =>
        config.EVENT_STORE === 'eventstoredb'
          ? createEventStore({ kind: 'eventstoredb', connectionString: config.ESDB_CONNECTION_STRING ?? '' })
          : createEventStore({ kind: 'postgres', pool, schema: config.DATABASE_SCHEMA, transactional: config.EVENT_STORE_TRANSACTIONAL }),
    },
    AccountRepository,
  ],
  exports: [EVENT_STORE, AccountRepository],
})
export class AccountsModule implements OnApplicationShutdown {
  constructor(@Inject(EVENT_STORE) private readonly store: EventStore) {}

  /** Before the infrastructure module (global, so shut down last) ends the pool. */
  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
