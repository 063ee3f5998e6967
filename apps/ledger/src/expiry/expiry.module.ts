import { Module } from '@nestjs/common';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { CLOCK, type Clock } from '@tally/shared';
import { AccountRepository } from '../accounts/account.repository';
import { AccountsModule } from '../accounts/accounts.module';
import { LedgerConfig } from '../config/ledger.config';
import { LOGGER, PG_POOL } from '../database/tokens.provider';
import { BackgroundWorkers } from '../workers/background.worker';
import { WorkersModule } from '../workers/workers.module';
import { ExpirySchedule } from './expiry.schedule';
import { ExpiryWorker } from './expiry.worker';

/**
 * Holds and expiring grants: the schedule the use cases write a row to before the append (authorize, grant),
 * and the worker that expires what is due (run with the `commands` workers).
 */
@Module({
  imports: [AccountsModule, WorkersModule],
  providers: [
    { provide: ExpirySchedule, inject: [PG_POOL, LedgerConfig], useFactory: (pool: Pool, config: LedgerConfig) => new ExpirySchedule(pool, config.DATABASE_SCHEMA) },
    {
      provide: ExpiryWorker,
      inject: [ExpirySchedule, AccountRepository, CLOCK, LOGGER, LedgerConfig, BackgroundWorkers],
      useFactory: (schedule: ExpirySchedule, accounts: AccountRepository, clock: Clock, logger: Logger, config: LedgerConfig, workers: BackgroundWorkers) => {
        const worker = new ExpiryWorker({ schedule, accounts, clock, logger: logger.child({ worker: 'expiry' }) });
        workers.add('expiry', worker, config.runs('commands'));
        return worker;
      },
    },
  ],
  exports: [ExpirySchedule],
})
export class ExpiryModule {}
