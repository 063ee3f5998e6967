import { Module } from '@nestjs/common';
import { CommandConsumerModule } from '../command-consumer/command-consumer.module';
import { ApplySubscriptionEventKafkaController } from './apply-subscription-event.kafka.controller';

@Module({ imports: [CommandConsumerModule], controllers: [ApplySubscriptionEventKafkaController] })
export class ApplySubscriptionEventModule {}
