import type { INestApplication } from '@nestjs/common';
import { Pool } from 'pg';
import { testDatabaseUrl } from '@tally/testing';
import { API_KEY, createTestSchema, createTopics, json, ledgerTestSettings, startLedger, textReader, waitForAvailable } from './ledger.harness';

/**
 * Live balance streams hang on one LISTEN connection per process. A connection can die without an error reaching
 * the client (a NAT or load balancer dropping an idle flow, a partition, a frozen server): nothing then arrives, the
 * stream's heartbeats go on, and the credits page shows an old balance as live. Here the LISTEN session's backend is
 * frozen (SIGSTOP: the socket stays open, nothing answers) on the real PostgreSQL, and a grant is made.
 */
describe('a live balance stream whose LISTEN connection went silent', () => {
  const { env, topics } = ledgerTestSettings();
  let app: INestApplication;
  let base: string;
  let drop: () => Promise<void>;
  const admin = new Pool({ connectionString: testDatabaseUrl(), max: 1 });

  beforeAll(async () => {
    let schema: string;
    ({ schema, drop } = await createTestSchema('ledger_listen'));
    await createTopics(topics);
    ({ app, base } = await startLedger({ ...env, LOG_LEVEL: 'silent' }, schema));
  });

  afterAll(async () => {
    await app?.close();
    await drop?.();
    await admin.end();
  });

  /** Backends of this process's database sessions that are listening (their last statement). */
  const listeners = async (): Promise<number[]> =>
    (await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'tally-ledger%' AND (query LIKE 'LISTEN %' OR query LIKE '%pg_listening_channels%')`,
    )).rows.map((row) => row.pid);

  it('notices within seconds, listens again and sends the balance it missed', async () => {
    const api = json(base);
    expect((await api.post('/v1/accounts/acct-silent/grants', { reason: 'test grant', idempotencyKey: 'a', amount: '10' })).status).toBe(201);
    await waitForAvailable(api, 'acct-silent', '10');
    const before = new Set(await listeners());
    const controller = new AbortController();
    const response = await fetch(`${base}/v1/accounts/acct-silent/balance/stream`, { headers: { authorization: `Bearer ${API_KEY}` }, signal: controller.signal });
    const { readUntil } = textReader(response.body as ReadableStream<Uint8Array>);
    await readUntil('"available":"10"');
    const ours = (await listeners()).filter((pid) => !before.has(pid));
    expect(ours).toHaveLength(1);

    process.kill(ours[0], 'SIGSTOP');
    try {
      expect((await api.post('/v1/accounts/acct-silent/grants', { reason: 'test grant', idempotencyKey: 'b', amount: '5' })).status).toBe(201);
      await readUntil('"available":"15"'); // jest's timeout (60 s) fails the test if it never comes
    } finally {
      process.kill(ours[0], 'SIGCONT');
      await admin.query('SELECT pg_terminate_backend($1)', [ours[0]]);
      controller.abort();
    }
  }, 60_000);
});
