import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { Kafka } from 'kafkajs';
import type { Pool } from 'pg';
import { Topics } from '@tally/contracts';
import type { EventStore } from '@tally/event-store';
import { KafkaProducer } from '@tally/kafka';
import type { RateCard } from '@tally/pricing';
import { CLOCK, createLogger, type Clock } from '@tally/shared';
import { AccountRepository } from './accounts/account.repository';
import { LedgerConfig } from './config/ledger.config';
import { LedgerCommandConsumer } from './consumers/ledger-command.consumer';
import { subscriptionToCommand } from './cycles/subscription-to-command';
import { EVENT_STORE, KAFKA_CLIENT, PG_POOL, RATE_CARD } from './database/database.tokens';
import { HoldExpirySchedule } from './holds/hold-expiry.schedule';
import { HoldExpiryWorker } from './holds/hold-expiry.worker';
import { LedgerEventsRelay } from './relay/ledger-events.relay';
import { usageToCommand } from './usage/usage-to-command';

/**
 * The ledger's background work: the usage and subscription consumers and the hold-expiry worker (`commands`)
 * and the relay to ledger.events.v1 (`relay`), each when WORKERS names it.
 * Started after boot; on SIGTERM the consumers finish their in-flight batch and leave their groups first.
 */
@Injectable()
export class LedgerWorkers implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger;
  private readonly usage: LedgerCommandConsumer;
  private readonly subscriptions: LedgerCommandConsumer;
  private readonly relay: LedgerEventsRelay;
  private readonly holds: HoldExpiryWorker;

  constructor(
    private readonly config: LedgerConfig,
    @Inject(KAFKA_CLIENT) kafka: Kafka,
    @Inject(PG_POOL) pool: Pool,
    @Inject(EVENT_STORE) store: EventStore,
    @Inject(RATE_CARD) rateCard: RateCard,
    producer: KafkaProducer,
    accounts: AccountRepository,
    @Inject(CLOCK) clock: Clock,
  ) {
    this.logger = createLogger('ledger', config.LOG_LEVEL);
    const deps = { kafka, pool, producer, accounts, config, logger: this.logger };
    this.usage = new LedgerCommandConsumer(
      { name: 'usage', topic: config.USAGE_EVENTS_TOPIC, contract: Topics.usageEvents, deadLetterTopic: config.USAGE_DLQ_TOPIC, groupId: config.CONSUMER_GROUP, toCommand: usageToCommand(rateCard) },
      deps,
    );
    this.subscriptions = new LedgerCommandConsumer(
      { name: 'subscriptions', topic: config.SUBSCRIPTION_EVENTS_TOPIC, contract: Topics.subscriptionEvents, deadLetterTopic: config.SUBSCRIPTION_DLQ_TOPIC, groupId: `${config.CONSUMER_GROUP}-subscriptions`, toCommand: subscriptionToCommand },
      deps,
    );
    this.relay = new LedgerEventsRelay({ store, pool, producer, config, logger: this.logger.child({ worker: 'relay' }) });
    const schedule = new HoldExpirySchedule(pool, config.DATABASE_SCHEMA);
    this.holds = new HoldExpiryWorker({ schedule, accounts, clock, logger: this.logger.child({ worker: 'hold-expiry' }) });
  }

  async onApplicationBootstrap(): Promise<void> {
    const starting: Promise<void>[] = [];
    if (this.config.runs('commands')) starting.push(this.usage.start(), this.subscriptions.start(), this.holds.start());
    if (this.config.runs('relay')) starting.push(this.relay.start());
    await Promise.all(starting);
  }

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    this.logger.info({ signal }, 'stopping workers');
    await Promise.all([this.usage.stop(), this.subscriptions.stop(), this.relay.stop(), this.holds.stop()]);
  }
}
