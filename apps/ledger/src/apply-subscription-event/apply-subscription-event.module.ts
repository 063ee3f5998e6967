import { Module } from '@nestjs/common';
import { CommandConsumerModule } from '../command-consumer/command-consumer.module';
import { ApplySubscriptionEventConsumer } from './apply-subscription-event.consumer';

@Module({ imports: [CommandConsumerModule], providers: [ApplySubscriptionEventConsumer] })
export class ApplySubscriptionEventModule {}
