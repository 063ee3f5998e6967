import { Pool } from 'pg';
import {
  endPool, OutageAnswers, loadWhile, postgresOutage, startPrivatePostgres, startServiceProcess, waitFor, type OutageTimeline, type PrivatePostgres, type ServiceProcess,
} from '@tally/testing';
import { READER_KEY, WRITER_KEY, cycleStarted, ledgerTopic, newWebhookSecret, sleep, startReceiver, startSmtp, testEnv, thresholdCrossed } from './notification.harness';

/**
 * PostgreSQL restarts (fast restart, then a few seconds down) on a PostgreSQL of the test's own while ledger
 * events keep arriving: the notification process keeps running, answers 503 + Retry-After meanwhile (never 500,
 * never a hang), and afterwards every crossing is delivered once per channel.
 */
describe('notification service across PostgreSQL restarts', () => {
  let pg: PrivatePostgres | undefined;
  let service: ServiceProcess | undefined;
  let smtp: Awaited<ReturnType<typeof startSmtp>> | undefined;
  let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined;
  let ledger: Awaited<ReturnType<typeof ledgerTopic>> | undefined;
  let pool: Pool | undefined;

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    smtp = await startSmtp();
    receiver = await startReceiver();
    ledger = await ledgerTopic();
  }, 60_000);

  afterAll(async () => {
    await service?.kill('SIGKILL');
    await ledger?.close().catch(() => undefined);
    await receiver?.close();
    await smtp?.close();
    if (pool) await endPool(pool).catch(() => undefined);
    await pg?.destroy();
  });

  it('rides out PostgreSQL restarts with 503 + Retry-After and delivers every crossing once per channel', async () => {
    if (!pg || !smtp || !receiver || !ledger) throw new Error('setup failed');
    const [db, hooks, topic] = [pg, receiver, ledger];
    const running = (service = await startServiceProcess('notification', testEnv({
      LOG_LEVEL: 'warn', DATABASE_URL: db.url, LEDGER_EVENTS_TOPIC: topic.topic, KAFKA_GROUP_ID: topic.group, SMTP_HOST: '127.0.0.1', SMTP_PORT: String(smtp.port),
    })));
    const alive = () => (running.child.exitCode === null && running.child.signalCode === null ? 'running' : `exited ${running.child.exitCode ?? running.child.signalCode}: ${running.output().slice(-1500)}`);

    const http = new OutageAnswers(running.base, WRITER_KEY);
    const request = (method: string, path: string, key: string, body?: unknown) => http.request(method, path, body, key);

    // 12 accounts, each crossing 20% then 5% of its allocation: a third of them before, during and after the outages.
    const accounts = Array.from({ length: 12 }, (_, i) => `restart-${i}`);
    for (const accountId of accounts) {
      const status = await request('PUT', `/v1/accounts/${accountId}/notification-settings`, WRITER_KEY, {
        email: `${accountId}@example.com`, webhookUrl: `${hooks.url}/${accountId}`, webhookSecret: newWebhookSecret(),
      });
      expect(status).toBe(200);
    }
    const cross = (ids: string[]) => topic.produce(ids.flatMap((accountId) => [cycleStarted(accountId, 'c1'), thresholdCrossed(accountId, 'c1', 20, '199.5'), thresholdCrossed(accountId, 'c1', 5, '49')]));

    const probe = async (running: () => boolean) => {
      while (running()) {
        await request('GET', `/v1/accounts/${accounts[0]}/notification-settings`, READER_KEY);
        await request('GET', `/v1/accounts/${accounts[0]}/notifications`, READER_KEY);
        await sleep(50);
      }
    };
    // A third of the accounts cross their thresholds before the outages, and the rest at each step of them.
    const crossingAt = { warm: accounts.slice(0, 4), restarted: accounts.slice(4, 6), down: accounts.slice(6, 8), started: accounts.slice(8) };
    const load = loadWhile(probe);
    let timeline: OutageTimeline;
    try {
      timeline = await postgresOutage(db, {
        onStep: async (step) => {
          if (step === 'down') expect(alive()).toBe('running');
          await cross(crossingAt[step]);
        },
      });
    } finally {
      await load.stop();
    }
    expect(alive()).toBe('running');
    const outcome = http.outcome(timeline);
    expect(outcome).toMatchObject({ failures: [], wrong: [], notUnavailableWhileDown: [] });
    expect(outcome.duringOutage).toBeGreaterThan(0);

    // Every crossing delivered once per channel: two delivered rows per channel per account, and the receiver saw
    // two distinct webhook ids per account (a resend after a lost acknowledgement would carry the same id).
    const check = (pool = new Pool({ connectionString: db.url, max: 2 }));
    const delivered = async () =>
      (await check.query<{ account_id: string; channel: string; n: number }>(
        `select account_id, channel, count(*)::int as n from notification.deliveries where state = 'delivered' group by 1, 2`,
      )).rows;
    await waitFor(async () => (await delivered()).filter((row) => row.n === 2).length === accounts.length * 2, 60_000, 250).catch(() => undefined);
    const rows = await delivered();
    expect(Object.fromEntries(rows.map((row) => [`${row.account_id}/${row.channel}`, row.n]))).toEqual(
      Object.fromEntries(accounts.flatMap((accountId) => [[`${accountId}/email`, 2], [`${accountId}/webhook`, 2]])),
    );
    for (const accountId of accounts) {
      const ids = new Set(hooks.received.filter((hook) => hook.path.endsWith(`/${accountId}`)).map((hook) => hook.headers['webhook-id']));
      expect([accountId, ids.size]).toEqual([accountId, 2]);
    }
    // And sent once: a send whose result could not be written while PostgreSQL was down is recorded when it is back,
    // not sent again when its lease ends (the process never stopped, so no resend is due).
    expect({ webhooks: hooks.received.length, mails: smtp.messages.length }).toEqual({ webhooks: accounts.length * 2, mails: accounts.length * 2 });
    expect(alive()).toBe('running');
    console.log(JSON.stringify({ answers: http.answers.length, unavailable: http.answers.filter((a) => a.status === 503).length, duringOutage: outcome.duringOutage, webhooks: hooks.received.length, mails: smtp.messages.length }));
  }, 110_000);
});
