import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module';
import { ApplyCommandBatchHandler } from './apply-command-batch.handler';

/** What the Kafka use cases (record-usage, apply-subscription-event) apply their batches with. */
@Module({ imports: [AccountsModule], providers: [ApplyCommandBatchHandler], exports: [ApplyCommandBatchHandler] })
export class CommandConsumerModule {}
