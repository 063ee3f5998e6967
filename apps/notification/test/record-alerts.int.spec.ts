import { Pool } from 'pg';
import pino from 'pino';
import { systemClock } from '@tally/shared';
import { createTestSchema, testDatabaseUrl, uniqueSuffix } from '@tally/testing';
import { RecordAlertsHandler } from '../src/alerts/record-alerts.handler';
import type { LedgerEvent } from '../src/alerts/notifications.decider';
import { WRITER_KEY, bootApp, call, ledgerTopic, type RunningApp } from './notification.harness';

/**
 * The notification consumer reads every ledger event, a usage's debit among them at thousands a second: the events no
 * notification can come of cost it no database round trip (it read the account's settings and cycle for each, in its
 * transaction, one partition at a time, and fell behind the ledger, delaying the alerts). Real PostgreSQL.
 */
describe('recording alerts (PostgreSQL)', () => {
  let schema: { schema: string; drop: () => Promise<void> };
  let ledger: Awaited<ReturnType<typeof ledgerTopic>>;
  let running: RunningApp;
  let pool: Pool;

  beforeAll(async () => {
    schema = await createTestSchema('notification_record');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 });
    ledger = await ledgerTopic();
    running = await bootApp({ DATABASE_SCHEMA: schema.schema, LEDGER_EVENTS_TOPIC: ledger.topic, KAFKA_GROUP_ID: ledger.group }); // migrates
  });

  afterAll(async () => {
    await running?.app.close();
    await ledger?.close();
    await pool?.end();
    await schema?.drop();
  });

  it('a usage debit costs no statement; a threshold crossing of the same account is still queued', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    expect((await call(running.baseUrl, 'PUT', `/v1/accounts/${accountId}/notification-settings`, WRITER_KEY, { email: `${accountId}@example.com` })).status).toBe(200);
    const handler = new RecordAlertsHandler({ schema: schema.schema, clock: systemClock, maxRetryMs: 3_600_000, logger: pino({ level: 'silent' }) });
    const at = '2030-01-01T00:00:00.000Z';
    const debits = Array.from({ length: 50 }, (_, i) =>
      ({ id: `${accountId}:u${i}`, type: 'UsageDebited', accountId, occurredAt: at, streamVersion: i + 3, data: { usageId: `u${i}`, amount: '1' } }) as unknown as LedgerEvent,
    );
    const crossing = { id: `${accountId}:t20`, type: 'LowCreditThresholdCrossed', accountId, occurredAt: at, streamVersion: 60,
      data: { thresholdPercent: 20, cycleId: 'c1', available: '150', allocation: '1000' } } as unknown as LedgerEvent;
    const client = await pool.connect();
    const statements: string[] = [];
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      statements.push(String(typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text).trim().split(/\s+/)[0]);
      return query(...args);
    };
    try {
      expect(await handler.apply(client, debits)).toBe(0);
      expect(statements).toEqual([]);
      expect(await handler.apply(client, [crossing])).toBe(1);
      expect(statements.filter((s) => s === 'INSERT')).toHaveLength(1);
    } finally {
      client.release();
    }
    const { rows } = await pool.query(`SELECT notification_type, channel FROM "${schema.schema}".deliveries WHERE account_id = $1`, [accountId]);
    expect(rows).toEqual([{ notification_type: 'low_credit', channel: 'email' }]);
  });
});
