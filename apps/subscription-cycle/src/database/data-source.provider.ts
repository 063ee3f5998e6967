import { Client } from 'pg';
import type { DataSourceOptions } from 'typeorm';
import { serviceSession } from '@tally/shared';
import type { SubscriptionCycleConfig } from '../config/subscription-cycle.config';
import { CreateSubscriptionTables1764100000000 } from './migrations/1764100000000-create-subscription-tables';
import { AddOutboxTrace1764900000000 } from './migrations/1764900000000-add-outbox-trace';
import { SubscriptionsParked1766100000000 } from './migrations/1766100000000-subscriptions-parked';
import { PlanFromCycle1766300000000 } from './migrations/1766300000000-plan-from-cycle';
import { OutboxMessageEntity } from './outbox-message.entity';
import { SubscriptionEntity } from './subscription.entity';

export const SUBSCRIPTION_CYCLE_ENTITIES = [SubscriptionEntity, OutboxMessageEntity];

/** TypeORM options: migrations only (never synchronize), every table in DATABASE_SCHEMA. */
export function dataSourceOptions(config: SubscriptionCycleConfig): DataSourceOptions {
  return {
    type: 'postgres',
    url: config.DATABASE_URL,
    schema: config.DATABASE_SCHEMA,
    entities: SUBSCRIPTION_CYCLE_ENTITIES,
    migrations: [CreateSubscriptionTables1764100000000, AddOutboxTrace1764900000000, SubscriptionsParked1766100000000, PlanFromCycle1766300000000],
    migrationsTableName: 'subscription_cycle_migrations',
    migrationsRun: true,
    migrationsTransactionMode: 'all',
    synchronize: false,
    extra: { max: config.poolMax(10), ...serviceSession('subscription-cycle', { queryTimeoutMs: config.PG_QUERY_TIMEOUT_MS }) },
  };
}

/** The migrations table lives in the schema, so the schema has to exist before TypeORM starts. */
export async function ensureSchema(config: SubscriptionCycleConfig): Promise<void> {
  const client = new Client({ connectionString: config.DATABASE_URL, ...serviceSession('subscription-cycle') });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${config.DATABASE_SCHEMA}"`);
  } catch (error) {
    // Two instances starting together race on the catalog; the loser sees a duplicate, which is fine.
    if (!['23505', '42P06'].includes((error as { code?: string }).code ?? '')) throw error;
  } finally {
    await client.end();
  }
}
