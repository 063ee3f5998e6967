import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { createEventStore, type EventStore } from '@tally/event-store';
import { LedgerConfig } from '../config/ledger.config';
import { EVENT_STORE, LOGGER, PG_POOL } from '../database/tokens.provider';
import { AccountRepository } from './account.repository';
import { ACCOUNT_SNAPSHOTS, AccountSnapshotRepository, type AccountSnapshots } from './account-snapshot.repository';

/**
 * The account aggregate's persistence, shared by every write-side use case: the event store (PostgreSQL, or
 * EventStoreDB), the codec of its events, the snapshots of long streams (PostgreSQL only) and the AccountRepository
 * that decides and appends.
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
    {
      provide: ACCOUNT_SNAPSHOTS,
      inject: [LedgerConfig, PG_POOL, LOGGER],
      useFactory: (config: LedgerConfig, pool: Pool, logger: Logger): AccountSnapshots | null =>
        config.EVENT_STORE === 'postgres' && config.ACCOUNT_SNAPSHOT_EVERY > 0
          ? { store: new AccountSnapshotRepository(pool, config.DATABASE_SCHEMA), every: config.ACCOUNT_SNAPSHOT_EVERY, logger: logger.child({ component: 'account-snapshots' }) }
          : null,
    },
    AccountRepository,
  ],
  exports: [EVENT_STORE, AccountRepository],
})
export class AccountsModule implements OnApplicationShutdown {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    private readonly accounts: AccountRepository,
  ) {}

  /** Before the infrastructure module (global, so shut down last) ends the pool. */
  async onApplicationShutdown(): Promise<void> {
    await this.accounts.snapshotsWritten();
    await this.store.close();
  }
}
