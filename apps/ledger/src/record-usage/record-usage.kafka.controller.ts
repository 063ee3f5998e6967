import { Controller, Inject } from '@nestjs/common';
import { Topics, parseMessage, type ParsedMessage } from '@tally/contracts';
import { KafkaBatchHandler, type KafkaBatch } from '@tally/kafka';
import type { RateCard } from '@tally/pricing';
import type { ToCommand } from '../accounts/account.commands';
import { ApplyCommandBatchHandler } from '../command-consumer/apply-command-batch.handler';
import { LedgerConfig } from '../config/ledger.config';
import { RATE_CARD } from '../database/tokens.provider';
import { usageToCommand } from './record-usage.handler';

/**
 * The transport of RecordUsage: usage.events.v1 (and the per-product usage topics of USAGE_TOPIC_NAMESPACES, each
 * limited to its account namespaces) → usageToCommand → the account, on libs/kafka's KafkaBatchTransport; refusals
 * to the usage DLQ. The topic actually consumed, the group (CONSUMER_GROUP) and the
 * dead-letter topic come from config (workers/ledger.kafka.transport.ts).
 */
@Controller()
export class RecordUsageKafkaController {
  private readonly toCommand: ToCommand;
  /** Per product topic (USAGE_TOPIC_NAMESPACES): the same conversion, refusing accounts outside its namespaces. */
  private readonly toCommandByTopic: ReadonlyMap<string, ToCommand>;

  constructor(
    private readonly commands: ApplyCommandBatchHandler,
    @Inject(RATE_CARD) rateCard: RateCard,
    config: LedgerConfig,
  ) {
    const maxFutureSkewSeconds = config.USAGE_MAX_FUTURE_SKEW_SECONDS;
    this.toCommand = usageToCommand(rateCard, { maxFutureSkewSeconds });
    this.toCommandByTopic = new Map(
      [...config.usageTopicNamespaces()].map(([topic, prefixes]) => [topic, usageToCommand(rateCard, { maxFutureSkewSeconds, namespaces: { topic, prefixes } })]),
    );
  }

  // The registry is keyed by the contract topic, whatever the configured topic's name.
  @KafkaBatchHandler(Topics.usageEvents, { parse: (_topic, message) => parseMessage(Topics.usageEvents, message.value) })
  async recordUsage(batch: KafkaBatch<ParsedMessage>): Promise<void> {
    await this.commands.apply(batch, this.toCommandByTopic.get(batch.topic) ?? this.toCommand);
  }
}
