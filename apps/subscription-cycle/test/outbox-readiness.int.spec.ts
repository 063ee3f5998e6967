import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { ManualClock, NotReadyError } from '@tally/shared';
import { createTestSchema, testDatabaseUrl, waitFor } from '@tally/testing';
import { OutboxRelay } from '../src/outbox/outbox.relay';
import { startApp, testTopic, type TestApp } from './subscription-cycle.harness';

/**
 * Readiness with more than one replica: the relay's turn is a transaction-scoped advisory lock, and a run that found
 * another replica holding it has published nothing and failed at nothing. It must not count as a success: two
 * replicas whose sends both keep failing take turns at the lock, and each one's missed turns cleared its streak, so
 * both stayed ready while no CycleStarted reached the ledger.
 */
describe('the outbox relay\'s readiness while another replica holds its turn (PostgreSQL, Kafka)', () => {
  let drop: () => Promise<void>;
  let app: TestApp;
  let otherReplica: Client;

  beforeAll(async () => {
    const created = await createTestSchema('sc_outbox_turns');
    drop = created.drop;
    // Its failures are the point: not logged here.
    app = await startApp({ schema: created.schema, topic: testTopic(), clock: new ManualClock(new Date('2030-01-15T09:00:00.000Z')), env: { LOG_LEVEL: 'silent' } });
    otherReplica = new Client({ connectionString: testDatabaseUrl() });
    await otherReplica.connect();
  });

  afterAll(async () => {
    await otherReplica?.query('ROLLBACK').catch(() => undefined);
    await otherReplica?.end();
    await app?.app.close();
    await drop?.();
  });

  it('stays not ready while its publishing failed and another replica holds the turn without publishing', async () => {
    const relay = app.app.get(OutboxRelay);
    const dataSource = app.app.get(DataSource);
    const schema = app.config.DATABASE_SCHEMA;
    // A message an hour old that Kafka refuses every time (larger than the broker takes: MESSAGE_TOO_LARGE).
    const envelope = { id: 'm-big', type: 'CycleStarted', version: 1, accountId: 'acct-big', occurredAt: '2030-01-15T08:00:00.000Z', data: { padding: 'x'.repeat(2_000_000) } };
    await dataSource.query(
      `INSERT INTO "${schema}".outbox_messages (message_id, topic, account_id, type, envelope, created_at)
       VALUES ('m-big', $1, 'acct-big', 'CycleStarted', $2::jsonb, now() - interval '1 hour')`,
      [app.config.SUBSCRIPTION_EVENTS_TOPIC, JSON.stringify(envelope)],
    );
    const ready = () => relay.health().then(() => true, (error: unknown) => {
      if (error instanceof NotReadyError) return false;
      throw error;
    });
    await waitFor(async () => !(await ready()), 20_000);

    // Another replica takes the turn and holds it (its own send hanging on the same broker, say).
    await otherReplica.query('BEGIN');
    await otherReplica.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`${schema}.outbox_relay`]);

    // Many of this replica's runs find the turn taken (counted as they end: the method the loop calls, passed
    // through): the outbox is still stuck.
    let turnsTaken = 0;
    const publishPending = relay.publishPending.bind(relay);
    const spy = jest.spyOn(relay, 'publishPending').mockImplementation(async (progressed) => {
      const published = await publishPending(progressed);
      if (published === 'elsewhere') turnsTaken += 1;
      return published;
    });
    try {
      await waitFor(() => turnsTaken >= 10, 20_000);
    } finally {
      spy.mockRestore();
    }
    expect(await ready()).toBe(false);

    // Once the message is gone (published elsewhere), it is ready again.
    await otherReplica.query('ROLLBACK');
    await dataSource.query(`UPDATE "${schema}".outbox_messages SET published_at = now() WHERE message_id = 'm-big'`);
    await waitFor(ready, 10_000);
  });
});
