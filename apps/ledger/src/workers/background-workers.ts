import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { Kafka } from 'kafkajs';
import type { Pool } from 'pg';
import { Topics } from '@tally/contracts';
import type { EventStore } from '@tally/event-store';
import { KafkaProducer } from '@tally/kafka';
import type { RateCard } from '@tally/pricing';
import { BackgroundStart, CLOCK, createLogger, type Clock, type HealthChecks } from '@tally/shared';
import { AccountRepository } from './accounts/account.repository';
import { LedgerConfig } from './config/ledger.config';
import { LedgerCommandConsumer } from './consumers/ledger-command.consumer';
import { subscriptionToCommand } from './cycles/subscription-to-command';
import { EVENT_STORE, KAFKA_CLIENT, PG_POOL, RATE_CARD } from './database/database.tokens';
import { ExpirySchedule } from './expiry/expiry.schedule';
import { ExpiryWorker } from './expiry/expiry.worker';
import { LedgerEventsRelay } from './relay/ledger-events.relay';
import { usageToCommand } from './usage/usage-to-command';

/**
 * The ledger's background work: the usage and subscription consumers and the hold-expiry worker (`commands`)
 * and the relay to ledger.events.v1 (`relay`), each when WORKERS names it.
 * Started in the background (never awaited before the HTTP listener: joining a group can take 30+ s after a
 * crash), a failed start retried and shown in readiness; on SIGTERM the consumers finish their in-flight batch
 * and leave their groups first.
 */
@Injectable()
export class LedgerWorkers implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger;
  private readonly usage: LedgerCommandConsumer;
  private readonly subscriptions: LedgerCommandConsumer;
  private readonly relay: LedgerEventsRelay;
  private readonly expiry: ExpiryWorker;
  /** Readiness checks of the workers this process runs, by name. */
  private readonly checks: HealthChecks = {};
  private readonly starts: BackgroundStart[] = [];

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
    const schedule = new ExpirySchedule(pool, config.DATABASE_SCHEMA);
    this.expiry = new ExpiryWorker({ schedule, accounts, clock, logger: this.logger.child({ worker: 'expiry' }) });
    if (config.runs('commands')) {
      this.inBackground('usage-consumer', this.usage);
      this.inBackground('subscriptions-consumer', this.subscriptions);
      this.inBackground('expiry', this.expiry);
    }
    if (config.runs('relay')) this.inBackground('relay', this.relay);
  }

  onApplicationBootstrap(): void {
    for (const start of this.starts) start.begin();
  }

  /** For /health/ready: each worker started (or still joining) and flowing, not stalled. */
  healthChecks(): HealthChecks {
    return this.checks;
  }

  private inBackground(name: string, worker: { start(): Promise<void>; checkFlowing(): void }): void {
    const start = new BackgroundStart({ name, start: () => worker.start(), logger: this.logger });
    this.starts.push(start);
    this.checks[name] = () => {
      start.check();
      worker.checkFlowing();
    };
  }

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    this.logger.info({ signal }, 'stopping workers');
    for (const start of this.starts) start.stop();
    await Promise.all([this.usage.stop(), this.subscriptions.stop(), this.relay.stop(), this.expiry.stop()]);
  }
}
