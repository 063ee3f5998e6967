import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'pg';
import { createTestSchema, testDatabaseUrl, uniqueSuffix, waitFor } from '@tally/testing';
import { READER_KEY, WRITER_KEY, bootApp, call, cycleStarted, ledgerTopic, newWebhookSecret, produceAndApply, thresholdCrossed, type RunningApp } from './notification.harness';

/**
 * One receiver that does not answer holds its own delivery until the send's deadline (WEBHOOK_TIMEOUT_MS), not every
 * other account's: the dispatcher claims due deliveries as its slots free up, instead of waiting for a whole claimed
 * batch to end before claiming again. Real HTTP receiver, real broker, real PostgreSQL.
 */
describe('a receiver that does not answer delays only its own delivery (e2e)', () => {
  let schema: { schema: string; drop: () => Promise<void> };
  let ledger: Awaited<ReturnType<typeof ledgerTopic>>;
  let pool: Pool;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let running: RunningApp;

  beforeAll(async () => {
    schema = await createTestSchema('notification_slow_receiver');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 });
    ledger = await ledgerTopic();
    receiver = await startReceiver();
    running = await bootApp({
      DATABASE_SCHEMA: schema.schema, LEDGER_EVENTS_TOPIC: ledger.topic, KAFKA_GROUP_ID: ledger.group, WEBHOOK_TIMEOUT_MS: '30000',
    });
  });

  afterAll(async () => {
    await receiver?.close(); // ends the request held open, so the app's shutdown does not wait for its deadline
    await running?.app.close();
    await ledger?.close();
    await pool?.end();
    await schema?.drop();
  });

  const alert = async (accountId: string) => {
    const settings = { webhookUrl: `${receiver.url}/${accountId}`, webhookSecret: newWebhookSecret() };
    expect((await call(running.baseUrl, 'PUT', `/v1/accounts/${accountId}/notification-settings`, WRITER_KEY, settings)).status).toBe(200);
    await produceAndApply(pool, schema.schema, ledger, [cycleStarted(accountId, 'c1'), thresholdCrossed(accountId, 'c1', 20, '150')]);
  };

  const webhookEntry = async (accountId: string) => {
    const response = await call(running.baseUrl, 'GET', `/v1/accounts/${accountId}/notifications`, READER_KEY);
    expect(response.status).toBe(200);
    return (response.body.items as { channel: string; state: string; attempts: number }[]).find((item) => item.channel === 'webhook');
  };

  it('another account is alerted while the first receiver still holds its request open', async () => {
    const silent = `acc-${uniqueSuffix()}`;
    const answering = `acc-${uniqueSuffix()}`;
    receiver.neverAnswer(silent);
    await alert(silent);
    await waitFor(() => receiver.openFor(silent) === 1, 15_000);

    await alert(answering);
    // Within a few dispatch intervals, not after the silent receiver's 30 s deadline ends the first attempt.
    const delivered = await waitFor(async () => {
      const item = await webhookEntry(answering);
      return item?.state === 'delivered' ? item : undefined;
    }, 15_000);
    expect(delivered.attempts).toBe(1);
    expect(receiver.openFor(silent)).toBe(1);
    expect((await webhookEntry(silent))?.state).toBe('pending');
  });

  // One receiver many accounts share (hooks.zapier.com, say) stops answering while more of its deliveries are due than
  // the instance has slots (DISPATCH_BATCH_SIZE, 20): at most WEBHOOK_HOST_CONCURRENCY (5) of them are under way at
  // once, and the other hosts' deliveries take the free slots instead of waiting for the silent one's deadlines.
  it('a shared receiver that does not answer holds at most WEBHOOK_HOST_CONCURRENCY slots: another host\'s account is alerted meanwhile', async () => {
    const shared = Array.from({ length: 24 }, () => `acc-${uniqueSuffix()}`);
    for (const accountId of shared) {
      receiver.neverAnswer(accountId);
      const settings = { webhookUrl: `${receiver.url}/${accountId}`, webhookSecret: newWebhookSecret() };
      expect((await call(running.baseUrl, 'PUT', `/v1/accounts/${accountId}/notification-settings`, WRITER_KEY, settings)).status).toBe(200);
    }
    await produceAndApply(pool, schema.schema, ledger, shared.flatMap((accountId) => [cycleStarted(accountId, 'c1'), thresholdCrossed(accountId, 'c1', 20, '150')]));
    // The first case's silent request is to the same host (one of its five, if still open).
    const openToShared = () => receiver.openInAll();
    await waitFor(() => openToShared() >= 5, 15_000);

    const elsewhere = await startReceiver();
    try {
      const answering = `acc-${uniqueSuffix()}`;
      const settings = { webhookUrl: `${elsewhere.url}/${answering}`, webhookSecret: newWebhookSecret() };
      expect((await call(running.baseUrl, 'PUT', `/v1/accounts/${answering}/notification-settings`, WRITER_KEY, settings)).status).toBe(200);
      await produceAndApply(pool, schema.schema, ledger, [cycleStarted(answering, 'c1'), thresholdCrossed(answering, 'c1', 20, '150')]);
      // Within a few dispatch intervals, not after the shared receiver's 30 s deadlines free the slots.
      const delivered = await waitFor(async () => {
        const item = await webhookEntry(answering);
        return item?.state === 'delivered' ? item : undefined;
      }, 15_000);
      expect(delivered.attempts).toBe(1);
      expect(openToShared()).toBe(5);
    } finally {
      await elsewhere.close();
    }
  });
});

/** A real HTTP receiver: 200 at once, except for the accounts told to get no answer (their requests stay open). */
async function startReceiver() {
  const silent = new Set<string>();
  const open = new Map<string, Set<ServerResponse>>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const accountId = (req.url ?? '').split('/').pop() ?? '';
    req.resume();
    if (!silent.has(accountId)) {
      req.on('end', () => res.writeHead(200).end('ok'));
      return;
    }
    const held = open.get(accountId) ?? new Set<ServerResponse>();
    open.set(accountId, held);
    held.add(res);
    res.on('close', () => held.delete(res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    neverAnswer: (accountId: string) => silent.add(accountId),
    openFor: (accountId: string) => open.get(accountId)?.size ?? 0,
    openInAll: () => [...open.values()].reduce((sum, held) => sum + held.size, 0),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
