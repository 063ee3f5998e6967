import { Module, type Type } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { Kafka } from 'kafkajs';
import { DataSource } from 'typeorm';
import { KafkaProducer, createKafkaClient, ensureTopics, kafkaHealth } from '@tally/kafka';
import { SubscriptionCycleConfig } from './config/subscription-cycle.config';
import { dataSourceOptions, migrateSubscriptionCycle } from './database/data-source.provider';
import { OutboxRelay } from './outbox/outbox.relay';
import { CATALOGUE, loadCatalogue } from './plans/catalogue.provider';
import { HeldPlansCheck } from './plans/held-plans.service';
import { PlansController } from './plans/plans.controller';
import { CycleScheduler } from './scheduler/cycle.worker';
import { SubscriptionController } from './subscriptions/subscription.controller';
import { SubscriptionHandler } from './subscriptions/subscription.handler';
import { SubscriptionRequests } from './subscriptions/subscription-requests.repository';
import { MetricsModule } from '@tally/metrics';
import { CLOCK, HEALTH_CHECKS, HealthController, LOGGER, createLogger, postgresReadyOf, systemClock, type Clock, type HealthChecks, type Logger } from '@tally/shared';

export interface SubscriptionCycleModuleOptions {
  config: SubscriptionCycleConfig;
  /** Tests inject a controllable clock; the system clock otherwise. */
  clock?: Clock;
}

const KAFKA = Symbol('KAFKA');

/**
 * Builds the app module for one config and clock. A class per call rather than a DynamicModule because
 * `bootstrapHttpApp` takes a module class; tests build as many independent instances as they like.
 */
export function createSubscriptionCycleModule({ config, clock = systemClock }: SubscriptionCycleModuleOptions): Type<unknown> {
  @Module({
    imports: [
      TerminusModule,
      MetricsModule.forRoot({ enabled: config.METRICS_ENABLED }),
      TypeOrmModule.forRootAsync({
        useFactory: async () => {
          await migrateSubscriptionCycle(config);
          return dataSourceOptions(config);
        },
      }),
    ],
    controllers: [HealthController, PlansController, SubscriptionController],
    providers: [
      { provide: SubscriptionCycleConfig, useValue: config },
      { provide: CLOCK, useValue: clock },
      { provide: LOGGER, useFactory: () => createLogger('subscription-cycle', config.LOG_LEVEL) },
      { provide: CATALOGUE, useFactory: () => loadCatalogue(config.PLANS_PATH) },
      {
        provide: KAFKA,
        inject: [LOGGER],
        useFactory: async (logger: Logger) => {
          const kafka = createKafkaClient({ clientId: config.KAFKA_CLIENT_ID, ...config.kafkaConnection(), logger: logger.child({ component: 'kafkajs' }) });
          await ensureTopics(kafka, [config.SUBSCRIPTION_EVENTS_TOPIC], config.SUBSCRIPTION_EVENTS_PARTITIONS, { replicationFactor: config.SUBSCRIPTION_EVENTS_REPLICATION_FACTOR });
          return kafka;
        },
      },
      { provide: KafkaProducer, inject: [KAFKA], useFactory: (kafka: Kafka) => new KafkaProducer(kafka) },
      {
        provide: HEALTH_CHECKS,
        inject: [DataSource, KAFKA, OutboxRelay, CycleScheduler],
        useFactory: (dataSource: DataSource, kafka: Kafka, outbox: OutboxRelay, scheduler: CycleScheduler): HealthChecks => ({
          postgres: postgresReadyOf(dataSource),
          kafka: () => kafkaHealth(kafka, { topics: [config.SUBSCRIPTION_EVENTS_TOPIC] }),
          outbox: () => outbox.health(),
          scheduler: async () => scheduler.health(),
        }),
      },
      HeldPlansCheck,
      SubscriptionHandler,
      SubscriptionRequests,
      CycleScheduler,
      OutboxRelay,
    ],
  })
  class SubscriptionCycleModule {}
  return SubscriptionCycleModule;
}
