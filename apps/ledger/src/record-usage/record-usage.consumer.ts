import { Inject, Injectable } from '@nestjs/common';
import { Topics } from '@tally/contracts';
import type { RateCard } from '@tally/pricing';
import { LedgerCommandConsumers } from '../command-consumer/ledger-command.consumer';
import { LedgerConfig } from '../config/ledger.config';
import { RATE_CARD } from '../database/database.tokens';
import { usageToCommand } from './record-usage.handler';

/** The transport of RecordUsage: usage.events.v1 (group CONSUMER_GROUP) → usageToCommand → the account; refusals to the usage DLQ. */
@Injectable()
export class RecordUsageConsumer {
  constructor(consumers: LedgerCommandConsumers, config: LedgerConfig, @Inject(RATE_CARD) rateCard: RateCard) {
    consumers.run('usage-consumer', {
      name: 'usage',
      topic: config.USAGE_EVENTS_TOPIC,
      contract: Topics.usageEvents,
      deadLetterTopic: config.USAGE_DLQ_TOPIC,
      groupId: config.CONSUMER_GROUP,
      toCommand: usageToCommand(rateCard),
    });
  }
}
