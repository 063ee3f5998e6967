import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DynamicModule, Global, Inject, Module, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import type { Kafka } from 'kafkajs';
import { Pool } from 'pg';
import { createEventStore, type EventStore } from '@tally/event-store';
import { KafkaProducer, createKafkaClient, kafkaHealth } from '@tally/kafka';
import { parseRateCard } from '@tally/pricing';
import { CLOCK, HEALTH_CHECKS, HealthController, createLogger, surviveConnectionLoss, systemClock, type Clock } from '@tally/shared';
import { parseCatalogue } from '@tally/subscription-domain';
import { AccountRepository } from './accounts/account.repository';
import { BalanceHttpController } from './accounts/balance/balance.http.controller';
import { CreditAccountsHttpController } from './accounts/credit-accounts.http.controller';
import { AuthorizationHttpController } from './authorizations/authorization.http.controller';
import { LedgerConfig } from './config/ledger.config';
import { migrateLedger } from './database/data-source';
import { CATALOGUE, EVENT_STORE, KAFKA_CLIENT, PG_POOL, RATE_CARD } from './database/database.tokens';
import { LedgerWorkers } from './ledger.workers';
import { HISTORY_CONTROLLERS, HISTORY_PROVIDERS } from './history';
import { ProjectionConsumer, READ_MODEL_MIGRATIONS, READ_MODEL_PROVIDERS } from './read-models';

const MIGRATED = Symbol('MIGRATED');

/**
 * The ledger service: event-sourced accounts, the usage and subscription consumers, the relay to
 * ledger.events.v1, the projections and the account HTTP API. Infrastructure providers are global so the
 * feature providers (read models, history) can inject them.
 */
@Global()
@Module({})
export class LedgerModule implements OnApplicationShutdown {
  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    private readonly producer: KafkaProducer,
  ) {}

  static forRoot(config: LedgerConfig, clock: Clock = systemClock): DynamicModule {
    const logger = createLogger('ledger', config.LOG_LEVEL);
    const infrastructure: Provider[] = [
      { provide: LedgerConfig, useValue: config },
      { provide: CLOCK, useValue: clock },
      { provide: RATE_CARD, useFactory: () => parseRateCard(readFileSync(resolve(config.RATE_CARD_PATH), 'utf8')) },
      { provide: CATALOGUE, useFactory: () => parseCatalogue(readFileSync(resolve(config.PLANS_PATH), 'utf8')) },
      { provide: MIGRATED, useFactory: () => migrateLedger(config, READ_MODEL_MIGRATIONS) },
      {
        provide: PG_POOL,
        inject: [MIGRATED],
        // A PostgreSQL restart must not end the process: lost connections are logged and replaced.
        useFactory: () => surviveConnectionLoss(new Pool({ connectionString: config.DATABASE_URL, max: 20 }), logger, 'ledger'),
      },
      {
        provide: EVENT_STORE,
        inject: [PG_POOL],
        useFactory: (pool: Pool) =>
          config.EVENT_STORE === 'eventstoredb'
            ? createEventStore({ kind: 'eventstoredb', connectionString: config.ESDB_CONNECTION_STRING ?? '' })
            : createEventStore({ kind: 'postgres', pool, schema: config.DATABASE_SCHEMA, transactional: config.EVENT_STORE_TRANSACTIONAL }),
      },
      { provide: KAFKA_CLIENT, useFactory: () => createKafkaClient({ clientId: `${config.KAFKA_CLIENT_ID}-ledger`, brokers: config.KAFKA_BROKERS, logger }) },
      {
        provide: KafkaProducer,
        inject: [KAFKA_CLIENT],
        useFactory: async (kafka: Kafka) => {
          const producer = new KafkaProducer(kafka);
          await producer.connect();
          return producer;
        },
      },
      {
        // Readiness: the dependencies, then each worker this process runs (started, or still joining, and not stalled).
        provide: HEALTH_CHECKS,
        inject: [KAFKA_CLIENT, PG_POOL, LedgerWorkers, ProjectionConsumer],
        useFactory: (kafka: Kafka, pool: Pool, workers: LedgerWorkers, projection: ProjectionConsumer) => ({
          postgres: () => pool.query('select 1'),
          kafka: () => kafkaHealth(kafka),
          ...workers.healthChecks(),
          ...(config.runs('projection') ? { 'projection-consumer': () => projection.checkFlowing() } : {}),
        }),
      },
    ];
    return {
      module: LedgerModule,
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: [HealthController, BalanceHttpController, CreditAccountsHttpController, AuthorizationHttpController, ...HISTORY_CONTROLLERS],
      providers: [...infrastructure, AccountRepository, LedgerWorkers, ...READ_MODEL_PROVIDERS, ...HISTORY_PROVIDERS],
      exports: [LedgerConfig, CLOCK, RATE_CARD, CATALOGUE, PG_POOL, EVENT_STORE, KAFKA_CLIENT, KafkaProducer, AccountRepository],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.producer.disconnect();
    await this.store.close();
    await this.pool.end();
  }
}
