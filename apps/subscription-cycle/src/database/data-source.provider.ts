import type { DataSourceOptions } from 'typeorm';
import { migrateServiceTakingTurns, serviceSession } from '@tally/shared';
import type { SubscriptionCycleConfig } from '../config/subscription-cycle.config';
import { CreateSubscriptionTables1764100000000 } from './migrations/1764100000000-create-subscription-tables';
import { AddOutboxTrace1764900000000 } from './migrations/1764900000000-add-outbox-trace';
import { SubscriptionsParked1766100000000 } from './migrations/1766100000000-subscriptions-parked';
import { PlanFromCycle1766300000000 } from './migrations/1766300000000-plan-from-cycle';
import { SubscriptionRequests1766500000000 } from './migrations/1766500000000-subscription-requests';
import { OutboxMessageEntity } from './outbox-message.entity';
import { SubscriptionEntity } from './subscription.entity';

export const SUBSCRIPTION_CYCLE_ENTITIES = [SubscriptionEntity, OutboxMessageEntity];

/**
 * TypeORM options: migrations only (never synchronize), every table in DATABASE_SCHEMA. The service's data source runs
 * none itself: migrateSubscriptionCycle does, before it starts.
 */
export function dataSourceOptions(config: SubscriptionCycleConfig): DataSourceOptions {
  return {
    type: 'postgres',
    url: config.DATABASE_URL,
    schema: config.DATABASE_SCHEMA,
    entities: SUBSCRIPTION_CYCLE_ENTITIES,
    migrations: [CreateSubscriptionTables1764100000000, AddOutboxTrace1764900000000, SubscriptionsParked1766100000000, PlanFromCycle1766300000000, SubscriptionRequests1766500000000],
    migrationsTableName: 'subscription_cycle_migrations',
    migrationsRun: false,
    synchronize: false,
    extra: { max: config.poolMax(10), ...serviceSession('subscription-cycle', config.poolLimits()) },
  };
}

/** Creates the schema if needed and applies pending migrations, replicas taking turns (migrateServiceTakingTurns). */
export function migrateSubscriptionCycle(config: SubscriptionCycleConfig): Promise<void> {
  return migrateServiceTakingTurns('subscription-cycle', config, dataSourceOptions(config));
}
