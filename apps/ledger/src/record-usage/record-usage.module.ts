import { Module } from '@nestjs/common';
import { CommandConsumerModule } from '../command-consumer/command-consumer.module';
import { RecordUsageConsumer } from './record-usage.consumer';

@Module({ imports: [CommandConsumerModule], providers: [RecordUsageConsumer] })
export class RecordUsageModule {}
