import { Injectable } from '@nestjs/common';
import { Topics } from '@tally/contracts';
import { LedgerCommandConsumers } from '../command-consumer/ledger-command.consumer';
import { LedgerConfig } from '../config/ledger.config';
import { subscriptionToCommand } from './apply-subscription-event.handler';

/** The transport of StartCycle / ChangePlan: subscription.events.v1 (group `<CONSUMER_GROUP>-subscriptions`) → the account. */
@Injectable()
export class ApplySubscriptionEventConsumer {
  constructor(consumers: LedgerCommandConsumers, config: LedgerConfig) {
    consumers.run('subscriptions-consumer', {
      name: 'subscriptions',
      topic: config.SUBSCRIPTION_EVENTS_TOPIC,
      contract: Topics.subscriptionEvents,
      deadLetterTopic: config.SUBSCRIPTION_DLQ_TOPIC,
      groupId: `${config.CONSUMER_GROUP}-subscriptions`,
      toCommand: subscriptionToCommand,
    });
  }
}
