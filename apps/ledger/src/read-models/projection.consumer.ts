import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Topics, parseMessage, type Envelope } from '@tally/contracts';
import { BatchConsumer, KafkaProducer, type KafkaLogger } from '@tally/kafka';
import { BackgroundStart } from '@tally/shared';
import type { Kafka } from 'kafkajs';
import type { Pool } from 'pg';
import { LedgerConfig } from '../config/ledger.config';
import { KAFKA_CLIENT, PG_POOL } from '../database/database.tokens';
import { LedgerProjection } from './ledger.projection';
import { asLedgerEnvelope } from './ledger-event.rows';

/** Nest's logger behind the slice of pino the kafka library expects. */
const nestKafkaLogger = (logger: Logger): KafkaLogger => ({
  debug: (obj, msg) => logger.debug({ ...obj, msg }),
  info: (obj, msg) => logger.log({ ...obj, msg }),
  warn: (obj, msg) => logger.warn({ ...obj, msg }),
  error: (obj, msg) => logger.error({ ...obj, msg }),
});

/**
 * Keeps the read models up to date from ledger.events.v1 with its own consumer group. Each batch is applied
 * in the transaction that also stores the partition offset, so the read models move exactly once per event.
 */
@Injectable()
export class ProjectionConsumer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ProjectionConsumer.name);
  private consumer: BatchConsumer<Envelope<object>> | undefined;
  private starting: BackgroundStart | undefined;

  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(KAFKA_CLIENT) private readonly kafka: Kafka,
    private readonly producer: KafkaProducer,
    private readonly config: LedgerConfig,
    private readonly projection: LedgerProjection,
  ) {}

  /** Starts the consumer in the background (joining the group must not hold up the HTTP listener); a failed start is retried. */
  onApplicationBootstrap(): void {
    if (!this.config.runs('projection')) return;
    const { LEDGER_EVENTS_TOPIC, LEDGER_DLQ_TOPIC, PROJECTION_GROUP, DATABASE_SCHEMA } = this.config;
    this.consumer = new BatchConsumer<Envelope<object>>({
      kafka: this.kafka,
      groupId: PROJECTION_GROUP,
      topics: [LEDGER_EVENTS_TOPIC],
      pool: this.pool,
      offsetsSchema: DATABASE_SCHEMA,
      producer: this.producer,
      deadLetterTopic: () => LEDGER_DLQ_TOPIC,
      // The configured topic carries ledger.events.v1 whatever its name (tests use unique names).
      parse: (_topic, message) => {
        const { envelope } = parseMessage(Topics.ledgerEvents, message.value);
        return asLedgerEnvelope(envelope);
      },
      handle: ({ messages, tx }) => this.projection.apply(tx, messages.map((message) => message.value)),
      maxMessagesPerTransaction: this.config.CONSUMER_MAX_BATCH,
      partitionsConsumedConcurrently: this.config.CONSUMER_PARTITIONS_CONCURRENTLY,
      logger: nestKafkaLogger(this.logger),
    });
    const consumer = this.consumer;
    this.starting = new BackgroundStart({ name: 'projection-consumer', start: () => consumer.start(), logger: nestKafkaLogger(this.logger) });
    this.starting.begin();
  }

  async onApplicationShutdown(): Promise<void> {
    this.starting?.stop();
    await this.consumer?.stop();
    this.consumer = undefined;
  }

  /** For the health check; undefined when workers are off. */
  health(): Promise<void> | undefined {
    return this.consumer?.health();
  }

  /** Readiness without I/O: started (or still joining) and not stalled on a message; a no-op when workers are off. */
  checkFlowing(): void {
    this.starting?.check();
    this.consumer?.checkFlowing();
  }

  /** Whether the consumer has joined its group. */
  get started(): boolean {
    return this.starting?.started ?? false;
  }
}

