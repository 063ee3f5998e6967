import { ManualClock } from '@tally/shared';
import { DataSource } from 'typeorm';
import { createTestSchema } from '@tally/testing';
import { OutboxRelay, oldestUnpublished } from '../src/outbox/outbox.relay';
import { startApp, testTopic, type TestApp } from './subscription-cycle.harness';

/**
 * Readiness names the outbox's oldest unpublished message and goes not ready by its age: the oldest by id, as a
 * number. Ids are bigints; read as text, "10" came before "9", so a stuck message 9 hid behind a fresh message 10.
 */
describe('the outbox\'s oldest unpublished message (PostgreSQL)', () => {
  let drop: () => Promise<void>;
  let app: TestApp;

  beforeAll(async () => {
    const created = await createTestSchema('sc_outbox_oldest');
    drop = created.drop;
    app = await startApp({ schema: created.schema, topic: testTopic(), clock: new ManualClock(new Date('2030-01-15T09:00:00.000Z')) });
    await app.app.get(OutboxRelay).stop(); // the rows below stay unpublished
  });

  afterAll(async () => {
    await app?.app.close();
    await drop?.();
  });

  it('is the lowest id as a number (9 before 10), with its age', async () => {
    const dataSource = app.app.get(DataSource);
    const schema = app.config.DATABASE_SCHEMA;
    for (const [id, ageMinutes] of [[9, 60], [10, 0]] as const) {
      await dataSource.query(
        `INSERT INTO "${schema}".outbox_messages (id, message_id, topic, account_id, type, envelope, created_at)
         OVERRIDING SYSTEM VALUE VALUES ($1, $2, 'subscription.events.v1', 'acct-outbox', 'CycleStarted', '{}'::jsonb, now() - $3 * interval '1 minute')`,
        [id, `m-${id}`, ageMinutes],
      );
    }
    const oldest = await oldestUnpublished(dataSource, schema);
    expect(oldest).toMatchObject({ id: '9', messageId: 'm-9' });
    expect(Number(oldest?.ageMs)).toBeGreaterThan(59 * 60_000);
  });
});
