import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module';
import { LedgerConfig } from '../config/ledger.config';
import { BalanceHttpController } from './balance/balance.http.controller';
import { BalanceReadRepository } from './balance/balance.repository';
import { HISTORY_CONTROLLERS, HISTORY_PROVIDERS } from './history/history.provider';
import { LedgerProjection } from '@tally/ledger-read-models';
import { ProjectionKafkaController } from './projection.kafka.controller';

/**
 * The read side: the projection of ledger.events.v1 into the read models (a Kafka controller on the ledger's
 * KafkaBatchTransport, its own consumer group), the balance (live, streamed, and `?at=` an instant, folded from
 * the event stream by AccountsModule), the transaction and usage history and the CSV export. The write side never imports it (lint: eslint.config.js). It expects the
 * read-model migration (READ_MODEL_MIGRATIONS) and the consumer offsets table of DATABASE_SCHEMA in the ledger's
 * migrations.
 */
@Module({
  imports: [AccountsModule],
  controllers: [BalanceHttpController, ...HISTORY_CONTROLLERS, ProjectionKafkaController],
  providers: [
    { provide: LedgerProjection, inject: [LedgerConfig], useFactory: (config: LedgerConfig) => new LedgerProjection(config.DATABASE_SCHEMA) },
    ...HISTORY_PROVIDERS,
  ],
  // Minting a portal token (mint-portal-token/) checks the account has a balance.
  exports: [BalanceReadRepository],
})
export class ReadModelsModule {}
