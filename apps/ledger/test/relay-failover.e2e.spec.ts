import { startServiceProcess, waitFor, type ServiceProcess } from '@tally/testing';
import { collect, createTestSchema, createTopics, json, ledgerTestSettings } from './ledger.harness';

/**
 * One relay publishes at a time: the leader holds a session advisory lock, the others wait to take it. A leader that
 * dies without closing its connection (its host lost, a network cut, the process frozen) leaves its backend to
 * PostgreSQL, which used to keep it (and the lock) until TCP keepalive gave up, hours later: nothing was published,
 * balances stopped, and every instance stayed ready. Two ledger processes on one schema; the leader frozen (SIGSTOP).
 */
describe('the relay when its leader freezes without closing its connection', () => {
  const { env, topics } = ledgerTestSettings();
  let schema: string;
  let drop: () => Promise<void>;
  const processes: ServiceProcess[] = [];

  beforeAll(async () => {
    ({ schema, drop } = await createTestSchema('ledger_relay_failover'));
    await createTopics(topics);
  });

  afterAll(async () => {
    for (const process of processes) {
      process.child.kill('SIGCONT');
      await process.kill('SIGKILL');
    }
    await drop?.();
  });

  it('another instance takes the lead once PostgreSQL ends the frozen leader\'s idle session, and publishes', async () => {
    const relayEnv = { ...env, DATABASE_SCHEMA: schema, WORKERS: 'relay', RELAY_LOCK_IDLE_TIMEOUT_SECONDS: '15' };
    const events = await collect(env.LEDGER_EVENTS_TOPIC);
    try {
      const leader = await startServiceProcess('ledger', relayEnv);
      processes.push(leader);
      const api = json(leader.base);
      expect((await api.post('/v1/accounts/acct-before-freeze/grants', { reason: 'test grant', idempotencyKey: 'g', amount: '1' })).status).toBe(201);
      await waitFor(() => events.messages.some((message) => message.value.includes('acct-before-freeze')), 20_000);
      const standby = await startServiceProcess('ledger', relayEnv);
      processes.push(standby);

      leader.child.kill('SIGSTOP');
      const frozenAt = Date.now();
      expect((await json(standby.base).post('/v1/accounts/acct-after-freeze/grants', { reason: 'test grant', idempotencyKey: 'g', amount: '1' })).status).toBe(201);

      await waitFor(() => events.messages.some((message) => message.value.includes('acct-after-freeze')), 45_000, 200);
      expect(Date.now() - frozenAt).toBeLessThan(40_000);
    } finally {
      await events.stop();
    }
  }, 120_000);
});
