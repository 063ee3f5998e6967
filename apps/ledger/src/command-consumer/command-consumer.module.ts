import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module';
import { WorkersModule } from '../workers/workers.module';
import { LedgerCommandConsumers } from './ledger-command.consumer';

/** The batch consumer engine the Kafka use cases (record-usage, apply-subscription-event) are wired to. */
@Module({ imports: [AccountsModule, WorkersModule], providers: [LedgerCommandConsumers], exports: [LedgerCommandConsumers] })
export class CommandConsumerModule {}
