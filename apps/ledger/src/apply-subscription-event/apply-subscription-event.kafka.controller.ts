import { Controller } from '@nestjs/common';
import { Topics, parseMessage, type ParsedMessage } from '@tally/contracts';
import { KafkaBatchHandler, type KafkaBatch } from '@tally/kafka';
import { ApplyCommandBatchHandler } from '../command-consumer/apply-command-batch.handler';
import { subscriptionToCommand } from './apply-subscription-event.handler';

/**
 * The transport of StartCycle / ChangePlan: subscription.events.v1 → the account, on libs/kafka's
 * KafkaBatchTransport (group `<CONSUMER_GROUP>-subscriptions`, see workers/ledger.kafka.transport.ts).
 */
@Controller()
export class ApplySubscriptionEventKafkaController {
  constructor(private readonly commands: ApplyCommandBatchHandler) {}

  @KafkaBatchHandler(Topics.subscriptionEvents, { parse: (_topic, message) => parseMessage(Topics.subscriptionEvents, message.value) })
  async applySubscriptionEvents(batch: KafkaBatch<ParsedMessage>): Promise<void> {
    await this.commands.apply(batch, subscriptionToCommand);
  }
}
