import { Module } from '@nestjs/common';
import { CommandConsumerModule } from '../command-consumer/command-consumer.module';
import { RecordUsageKafkaController } from './record-usage.kafka.controller';

@Module({ imports: [CommandConsumerModule], controllers: [RecordUsageKafkaController] })
export class RecordUsageModule {}
