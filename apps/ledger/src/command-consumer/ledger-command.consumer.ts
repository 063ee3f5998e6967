import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import type { Kafka } from 'kafkajs';
import { parseMessage, type ParsedMessage, type TopicName } from '@tally/contracts';
import { BatchConsumer, KafkaProducer, type ConsumedMessage, type HandlerBatch } from '@tally/kafka';
import { Rejection, type ToCommand } from '../accounts/account-command';
import { AccountRepository, type BatchCommand, type LoadedAccount } from '../accounts/account.repository';
import { LedgerConfig } from '../config/ledger.config';
import { KAFKA_CLIENT, LOGGER, PG_POOL } from '../database/database.tokens';
import { BackgroundWorkers } from '../workers/background-workers';

export interface LedgerCommandConsumerOptions {
  name: string;
  topic: string;
  /** Which contract the topic carries (its registry), whatever the topic's configured name. */
  contract: TopicName;
  deadLetterTopic: string;
  groupId: string;
  toCommand: ToCommand;
}

interface LedgerCommandConsumerDeps {
  kafka: Kafka;
  pool: Pool;
  producer: KafkaProducer;
  accounts: AccountRepository;
  config: LedgerConfig;
  logger: Logger;
}

/**
 * Builds the command consumers of the use cases (record-usage, apply-subscription-event), each run in the
 * background when WORKERS names `commands`.
 */
@Injectable()
export class LedgerCommandConsumers {
  private readonly deps: LedgerCommandConsumerDeps;

  constructor(
    @Inject(KAFKA_CLIENT) kafka: Kafka,
    @Inject(PG_POOL) pool: Pool,
    producer: KafkaProducer,
    accounts: AccountRepository,
    config: LedgerConfig,
    @Inject(LOGGER) logger: Logger,
    private readonly workers: BackgroundWorkers,
  ) {
    this.deps = { kafka, pool, producer, accounts, config, logger };
  }

  /** A consumer of `options.topic` whose messages become account commands; `workerName` names it in readiness. */
  run(workerName: string, options: LedgerCommandConsumerOptions): LedgerCommandConsumer {
    const consumer = new LedgerCommandConsumer(options, this.deps);
    this.workers.add(workerName, consumer, this.deps.config.runs('commands'));
    return consumer;
  }
}

/**
 * The ledger's hot path: a Kafka batch is grouped by account, decided, and appended to the event store; the
 * partition's offset is stored in PostgreSQL by libs/kafka's BatchConsumer, in its transaction. Two paths to
 * exactly-once effects (README, "Money and exactly-once"):
 * - shared transaction (PostgreSQL store, the default): the events are appended in that same transaction, so
 *   events and offset commit together or not at all;
 * - idempotent append (EventStoreDB, or EVENT_STORE_TRANSACTIONAL=false): the append commits first, on its own,
 *   and the offset after it. A crash in between redelivers the messages; they are decided again on the stream as
 *   it now is, where the decider finds their idempotency keys already applied (no events), and an append that is
 *   repeated anyway carries the same event ids at the same expected version and comes back as a duplicate.
 * Messages the domain refuses go to the dead-letter topic with the reason; the partition keeps flowing.
 */
export class LedgerCommandConsumer {
  private consumer?: BatchConsumer<ParsedMessage>;
  /** States decided in a transaction, cached only once that transaction committed. */
  private readonly pending = new Map<string, Map<string, LoadedAccount>>();

  constructor(
    private readonly options: LedgerCommandConsumerOptions,
    private readonly deps: LedgerCommandConsumerDeps,
  ) {}

  /** Resolves once the group is joined; a failed start can be retried (the same BatchConsumer is reused). */
  async start(): Promise<void> {
    const { logger } = this.deps;
    await this.batchConsumer().start();
    const exactlyOnce = this.deps.accounts.sharesTransactions() ? 'shared-transaction' : 'idempotent-append-then-offset';
    logger.info({ consumer: this.options.name, topic: this.options.topic, groupId: this.options.groupId, exactlyOnce }, 'consumer started');
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
  }

  /** Readiness: throws a NotReadyError naming the stalled partition and offset (see BatchConsumer.checkFlowing). */
  checkFlowing(): void {
    this.consumer?.checkFlowing();
  }

  private batchConsumer(): BatchConsumer<ParsedMessage> {
    if (this.consumer) return this.consumer;
    const { config, logger } = this.deps;
    this.consumer = new BatchConsumer<ParsedMessage>({
      kafka: this.deps.kafka,
      groupId: this.options.groupId,
      topics: [this.options.topic],
      pool: this.deps.pool,
      offsetsSchema: config.DATABASE_SCHEMA,
      deadLetterTopic: () => this.options.deadLetterTopic,
      producer: this.deps.producer,
      parse: (_topic, message) => parseMessage(this.options.contract, message.value),
      handle: (batch) => this.apply(batch),
      maxMessagesPerTransaction: config.CONSUMER_MAX_BATCH,
      partitionsConsumedConcurrently: config.CONSUMER_PARTITIONS_CONCURRENTLY,
      logger: logger.child({ consumer: this.options.name }),
      hooks: {
        afterDbCommit: async ({ topic, partition }) => {
          const key = `${topic}:${partition}`;
          const saved = this.pending.get(key);
          if (saved) this.deps.accounts.remember(saved);
          this.pending.delete(key);
        },
      },
    });
    return this.consumer;
  }

  private async apply(batch: HandlerBatch<ParsedMessage>): Promise<void> {
    const key = `${batch.topic}:${batch.partition}`;
    this.pending.delete(key);
    const commands: BatchCommand[] = [];
    const sources: ConsumedMessage<ParsedMessage>[] = [];
    for (const message of batch.messages) {
      try {
        commands.push(this.options.toCommand(message.value));
        sources.push(message);
      } catch (error) {
        if (!(error instanceof Rejection)) throw error;
        batch.deadLetter(message, error.code, error.details);
        this.logRejection(message, error.code);
      }
    }
    if (commands.length === 0) return;
    try {
      // undefined when the store cannot share the offsets' transaction: the append then commits on its own, first.
      const unitOfWork = this.deps.accounts.joinTransaction(batch.tx);
      const { saved, refused } = await this.deps.accounts.executeBatch(commands, unitOfWork);
      // A command the domain refused changed nothing: its message goes to the dead-letter topic with the reason.
      for (const { index, code, message, details } of refused) batch.deadLetter(sources[index], code, { message, details });
      this.pending.set(key, saved);
    } catch (error) {
      this.deps.accounts.forget(commands.map((c) => c.command.accountId));
      throw error;
    }
  }

  private logRejection(message: ConsumedMessage<ParsedMessage>, code: string) {
    this.deps.logger.warn({ accountId: message.value.envelope.accountId, messageId: message.value.envelope.id, code }, 'message dead-lettered');
  }
}
