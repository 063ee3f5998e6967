import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { Catalogue } from '@tally/subscription-domain';
import { quoteIdentifier } from '@tally/shared';
import { SubscriptionCycleConfig } from '../config/subscription-cycle.config';
import { CATALOGUE } from './catalogue.provider';

/**
 * Refuses to start on a catalogue without a plan some subscription holds (as its plan or as a scheduled change):
 * those accounts could neither renew (the scheduler would park them) nor change plan. The way out of the catalogue
 * is `retired: true`. Runs before the scheduler and the HTTP API start (module init precedes bootstrap).
 */
@Injectable()
export class HeldPlansCheck implements OnModuleInit {
  constructor(
    private readonly config: SubscriptionCycleConfig,
    private readonly dataSource: DataSource,
    @Inject(CATALOGUE) private readonly catalogue: Catalogue,
  ) {}

  async onModuleInit(): Promise<void> {
    const s = quoteIdentifier(this.config.DATABASE_SCHEMA);
    const held: { plan_id: string; subscriptions: string }[] = await this.dataSource.query(
      `SELECT plan_id, count(*)::text AS subscriptions
         FROM (SELECT plan_id FROM ${s}.subscriptions
               UNION ALL
               SELECT pending_plan_id FROM ${s}.subscriptions WHERE pending_plan_id IS NOT NULL) held
        GROUP BY plan_id ORDER BY plan_id`,
    );
    const missing = held.filter((row) => !this.catalogue.plans.has(row.plan_id));
    if (missing.length === 0) return;
    const list = missing.map((row) => `"${row.plan_id}" (${row.subscriptions} subscription${row.subscriptions === '1' ? '' : 's'})`).join(', ');
    throw new Error(`the plan catalogue ${this.catalogue.version} lacks plans that subscriptions hold: ${list}; keep them with retired: true instead of removing them`);
  }
}
