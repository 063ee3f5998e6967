import { ManualClock } from '@tally/shared';
import { DataSource } from 'typeorm';
import { createTestSchema, waitFor } from '@tally/testing';
import { http, startApp, testTopic, type TestApp } from './subscription-cycle.harness';

/**
 * The answers of requests sent with an Idempotency-Key are kept IDEMPOTENCY_KEY_RETENTION_DAYS (30), then deleted:
 * without it the table gains a row per keyed request for ever. A key past it is a new request again.
 */
describe('subscription request answers are forgotten after their retention (PostgreSQL)', () => {
  let drop: () => Promise<void>;
  let app: TestApp | undefined;
  let schema: string;
  const clock = new ManualClock(new Date('2030-01-15T09:00:00.000Z'));

  beforeAll(async () => {
    ({ schema, drop } = await createTestSchema('sc_request_retention'));
  });

  afterAll(async () => {
    await app?.app.close();
    await drop?.();
  });

  it('deletes answers older than 30 days at start-up, keeps the recent ones; a key past its retention is decided again', async () => {
    app = await startApp({ schema, topic: testTopic(), clock });
    const path = '/v1/accounts/acct-request-retention/subscription';
    expect((await http(app.baseUrl, 'PUT', path, { planId: 'pro', timeZone: 'UTC' }, undefined, { 'idempotency-key': 'old' })).body).toMatchObject({ outcome: 'subscribed' });
    expect((await http(app.baseUrl, 'DELETE', path, undefined, undefined, { 'idempotency-key': 'recent' })).body).toMatchObject({ outcome: 'cancel-scheduled' });
    await app.app.close();
    const dataSource = new DataSource({ type: 'postgres', url: app.config.DATABASE_URL });
    await dataSource.initialize();
    try {
      await dataSource.query(`UPDATE "${schema}".subscription_requests SET created_at = now() - interval '31 days' WHERE idempotency_key = 'old'`);
      await dataSource.query(`UPDATE "${schema}".subscription_requests SET created_at = now() - interval '29 days' WHERE idempotency_key = 'recent'`);
      app = await startApp({ schema, topic: testTopic(), clock });
      const left = async () => (await dataSource.query(`SELECT idempotency_key FROM "${schema}".subscription_requests ORDER BY 1`)).map((row: { idempotency_key: string }) => row.idempotency_key);
      await waitFor(async () => (await left()).length === 1, 10_000);
      expect(await left()).toEqual(['recent']);
      // 'old' is forgotten: the PUT is decided on today's state (it undoes the pending cancel), 'recent' still replays.
      expect((await http(app.baseUrl, 'DELETE', path, undefined, undefined, { 'idempotency-key': 'recent' })).headers['idempotent-replayed']).toBe('true');
      expect((await http(app.baseUrl, 'PUT', path, { planId: 'pro', timeZone: 'UTC' }, undefined, { 'idempotency-key': 'old' })).body).toMatchObject({ outcome: 'change-cancelled' });
    } finally {
      await dataSource.destroy();
    }
  });
});
