import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DynamicModule, Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Kafka } from 'kafkajs';
import { Pool } from 'pg';
import type { MigrationInterface } from 'typeorm';
import { KafkaProducer, createKafkaClient } from '@tally/kafka';
import { parseRateCard } from '@tally/pricing';
import { CLOCK, createLogger, createServicePool, type Clock } from '@tally/shared';
import { parseCatalogue } from '@tally/subscription-domain';
import { LEDGER_POOL_MAX, LedgerConfig } from './config/ledger.config';
import { migrateLedger } from './database/data-source.provider';
import { CATALOGUE, DEAD_LETTER_PRODUCER, KAFKA_CLIENT, LOGGER, PG_POOL, RATE_CARD } from './database/tokens.provider';

const MIGRATED = Symbol('MIGRATED');

/**
 * What every module of the ledger uses and none owns: the config, the clock, the logger, the rate card and plan
 * catalogue, the PostgreSQL pool (after migrations), the Kafka client, the relay's producer (KafkaProducer) and
 * the dead letters' (DEAD_LETTER_PRODUCER, see there). Global, like a config module; being global it is also shut
 * down last, after the modules that use the pool and the producers.
 */
@Global()
@Module({})
export class InfrastructureModule implements OnApplicationShutdown {
  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    private readonly producer: KafkaProducer,
    @Inject(DEAD_LETTER_PRODUCER) private readonly deadLetterProducer: KafkaProducer,
  ) {}

  /** `migrations`: the read models' migrations, passed in by the root module (database/ knows no read model). */
  static forRoot(config: LedgerConfig, clock: Clock, migrations: (new () => MigrationInterface)[]): DynamicModule {
    const logger = createLogger('ledger', config.LOG_LEVEL);
    return {
      module: InfrastructureModule,
      providers: [
        { provide: LedgerConfig, useValue: config },
        { provide: CLOCK, useValue: clock },
        { provide: LOGGER, useValue: logger },
        { provide: RATE_CARD, useFactory: () => parseRateCard(readFileSync(resolve(config.RATE_CARD_PATH), 'utf8')) },
        { provide: CATALOGUE, useFactory: () => parseCatalogue(readFileSync(resolve(config.PLANS_PATH), 'utf8')) },
        { provide: MIGRATED, useFactory: () => migrateLedger(config, migrations) },
        {
          provide: PG_POOL,
          inject: [MIGRATED],
          // A PostgreSQL restart must not end the process: lost connections are logged and replaced.
          // Named by its workers (tally-ledger:commands,relay), so each process's sessions are told apart in pg_stat_activity.
          useFactory: () => createServicePool(config.DATABASE_URL, config.poolMax(LEDGER_POOL_MAX), logger, `ledger:${config.WORKERS}`, config.poolLimits()),
        },
        { provide: KAFKA_CLIENT, useFactory: () => createKafkaClient({ clientId: `${config.KAFKA_CLIENT_ID}-ledger`, ...config.kafkaConnection(), logger }) },
        // Connected at boot only where a worker sends (the relay; the consumers' dead letters): a process that
        // sends nothing (WORKERS=none) starts while Kafka is down.
        { provide: KafkaProducer, inject: [KAFKA_CLIENT], useFactory: (kafka: Kafka) => producerFor(kafka, config.runs('relay')) },
        { provide: DEAD_LETTER_PRODUCER, inject: [KAFKA_CLIENT], useFactory: (kafka: Kafka) => producerFor(kafka, config.runs('commands') || config.runs('projection')) },
      ],
      exports: [LedgerConfig, CLOCK, LOGGER, RATE_CARD, CATALOGUE, PG_POOL, KAFKA_CLIENT, KafkaProducer, DEAD_LETTER_PRODUCER],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.producer.disconnect(), this.deadLetterProducer.disconnect()]);
    await this.pool.end();
  }
}

/** A producer, connected now when this process sends (else it connects at its first send, if ever). */
async function producerFor(kafka: Kafka, sends: boolean): Promise<KafkaProducer> {
  const producer = new KafkaProducer(kafka);
  if (sends) await producer.connect();
  return producer;
}
