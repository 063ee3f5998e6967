import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServiceProcess, waitFor, type ServiceProcess } from '@tally/testing';
import { API_KEY, createTestSchema, createTopics, json, ledgerTestSettings, textReader } from './ledger.harness';

/**
 * A rolling deploy sends SIGTERM to a ledger whose users have their credits page open: every page holds a live
 * balance stream (server-sent events) that never ends on its own. The ledger ends those streams (their clients
 * reconnect, to another instance) and exits, rather than waiting for the pages to close until the orchestrator's
 * SIGKILL.
 */
describe('ledger shutdown with live balance streams open', () => {
  const { env, topics } = ledgerTestSettings();
  let schema: string;
  let drop: () => Promise<void>;
  let ledger: ServiceProcess | undefined;

  beforeAll(async () => {
    ({ schema, drop } = await createTestSchema('ledger_shutdown'));
    await createTopics(topics);
  });

  afterAll(async () => {
    await ledger?.kill('SIGKILL');
    await drop?.();
  });

  it('ends the open streams and exits on SIGTERM', async () => {
    const service = (ledger = await startServiceProcess('ledger', { ...env, DATABASE_SCHEMA: schema }, 90_000));
    const api = json(service.base);
    expect((await api.post('/v1/accounts/acct-page/grants', { reason: 'test grant', idempotencyKey: 'g', amount: '10' })).status).toBe(201);
    await waitFor(async () => (await api.get('/v1/accounts/acct-page/balance')).status === 200, 30_000);

    const response = await fetch(`${service.base}/v1/accounts/acct-page/balance/stream`, { headers: { authorization: `Bearer ${API_KEY}` } });
    const { reader, readUntil } = textReader(response.body as ReadableStream<Uint8Array>);
    await readUntil('"available":"10"');

    // The stream ends from the server's side (done, or the connection dropped) and the process exits, well within
    // a deploy's grace period; without that, both wait for the page to close.
    const streamEnded = (async () => {
      for (;;) if ((await reader.read()).done) return;
    })().catch(() => undefined);
    const shutdown = Promise.all([streamEnded, service.kill('SIGTERM')]).then(() => 'exited');
    const bound = new AbortController();
    const tooLong = sleep(30_000, 'still running 30 s after SIGTERM', { signal: bound.signal }).catch(() => 'cancelled');
    expect(await Promise.race([shutdown, tooLong])).toBe('exited');
    bound.abort();
  }, 120_000);

  /**
   * Nest's shutdown hooks listen to eleven signals, SIGUSR2 among them: an operator taking a heap snapshot the way
   * Node documents it (`--heapsnapshot-signal=SIGUSR2`, then `kill -USR2`) stopped the ledger it meant to examine.
   */
  it('writes a heap snapshot on SIGUSR2 and keeps serving', async () => {
    const snapshots = mkdtempSync(join(tmpdir(), 'ledger-heap-'));
    const flags = process.env.SERVICE_NODE_ARGS;
    process.env.SERVICE_NODE_ARGS = `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshots}`;
    try {
      const service = (ledger = await startServiceProcess('ledger', { ...env, DATABASE_SCHEMA: schema }, 90_000));
      service.child.kill('SIGUSR2');
      await waitFor(async () => readdirSync(snapshots).some((file) => file.endsWith('.heapsnapshot')), 60_000);
      const api = json(service.base);
      expect((await api.post('/v1/accounts/acct-signals/grants', { reason: 'test grant', idempotencyKey: 'g', amount: '5' })).status).toBe(201);
      await waitFor(async () => (await api.get('/v1/accounts/acct-signals/balance')).status === 200, 30_000);
      expect((await fetch(`${service.base}/health/ready`)).status).toBe(200);
      expect(service.child.exitCode).toBeNull();
    } finally {
      if (flags === undefined) delete process.env.SERVICE_NODE_ARGS; // assigning undefined would store the text 'undefined'
      else process.env.SERVICE_NODE_ARGS = flags;
      rmSync(snapshots, { recursive: true, force: true });
    }
  }, 120_000);
});
