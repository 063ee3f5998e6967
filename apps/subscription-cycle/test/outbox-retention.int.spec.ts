import { ManualClock } from '@tally/shared';
import { DataSource } from 'typeorm';
import { createTestSchema, waitFor } from '@tally/testing';
import { startApp, testTopic, type TestApp } from './subscription-cycle.harness';

/**
 * Published outbox messages are kept OUTBOX_RETENTION_DAYS (7) after Kafka acknowledged them, then deleted: the table
 * gained a row per subscription per month for ever (and its unique index with it). Unpublished ones are never touched.
 */
describe('the outbox forgets published messages after its retention (PostgreSQL)', () => {
  let drop: () => Promise<void>;
  let app: TestApp | undefined;
  let schema: string;

  beforeAll(async () => {
    ({ schema, drop } = await createTestSchema('sc_outbox_retention'));
  });

  afterAll(async () => {
    await app?.app.close();
    await drop?.();
  });

  it('deletes messages published more than 7 days ago, at start-up; keeps the recent ones', async () => {
    app = await startApp({ schema, topic: testTopic(), clock: new ManualClock(new Date('2030-01-15T09:00:00.000Z')) });
    await app.app.close();
    const dataSource = new DataSource({ type: 'postgres', url: app.config.DATABASE_URL });
    await dataSource.initialize();
    try {
      for (const [id, publishedDaysAgo] of [[1, 30], [2, 8], [3, 6], [4, 0]] as const) {
        await dataSource.query(
          `INSERT INTO "${schema}".outbox_messages (id, message_id, topic, account_id, type, envelope, created_at, published_at)
           OVERRIDING SYSTEM VALUE VALUES ($1, $2, 'subscription.events.v1', 'acct-retention', 'CycleStarted', '{}'::jsonb, now() - $3 * interval '1 day', now() - $3 * interval '1 day')`,
          [id, `m-${id}`, publishedDaysAgo],
        );
      }
      app = await startApp({ schema, topic: testTopic(), clock: new ManualClock(new Date('2030-01-15T09:00:00.000Z')) });
      const left = async () => (await dataSource.query(`SELECT message_id FROM "${schema}".outbox_messages ORDER BY id`)).map((row: { message_id: string }) => row.message_id);
      await waitFor(async () => (await left()).length === 2, 10_000);
      expect(await left()).toEqual(['m-3', 'm-4']);
    } finally {
      await dataSource.destroy();
    }
  });
});
