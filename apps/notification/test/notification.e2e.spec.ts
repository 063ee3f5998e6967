import { Pool } from 'pg';
import { Webhook } from 'standardwebhooks';
import { parsePrometheusText, sumOf } from '@tally/metrics';
import { createTestSchema, testDatabaseUrl, uniqueSuffix, waitFor } from '@tally/testing';
import {
  READER_KEY, WRITER_KEY, bootApp, produceAndApply as applied, call, cycleStarted, envelope, ledgerTopic, newWebhookSecret, startReceiver, startSmtp,
  testEnv, thresholdCrossed, type RunningApp,
} from './notification.harness';
import { startServiceProcess } from '@tally/testing';

/**
 * End to end with the real broker, PostgreSQL, an SMTP server (smtp-server + mailparser) and an HTTP receiver:
 * ledger events in, emails and signed webhooks out, exactly once per threshold per cycle per channel.
 */
describe('notification service (e2e)', () => {
  let schema: { schema: string; drop: () => Promise<void> };
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let ledger: Awaited<ReturnType<typeof ledgerTopic>>;
  let running: RunningApp;
  let pool: Pool;

  const overrides = () => ({
    DATABASE_SCHEMA: schema.schema, LEDGER_EVENTS_TOPIC: ledger.topic, KAFKA_GROUP_ID: ledger.group, SMTP_HOST: '127.0.0.1', SMTP_PORT: String(smtp.port),
  });

  /** tally_notification_deliveries_total of the webhook channel, by outcome, from the running app's GET /metrics. */
  const webhookOutcomes = async () => {
    const samples = parsePrometheusText(await (await fetch(`${running.baseUrl}/metrics`)).text());
    const count = (outcome: string) => sumOf(samples, 'tally_notification_deliveries_total', { channel: 'webhook', outcome });
    return { retrying: count('retrying'), delivered: count('delivered'), failed: count('failed') };
  };

  /** Produces and waits until the consumer committed those offsets in PostgreSQL. */
  const produceAndApply = (...envelopes: Parameters<typeof ledger.produce>[0]) => applied(pool, schema.schema, ledger, envelopes);

  const mailsTo = (address: string) => smtp.messages.filter((mail) => mail.to && !Array.isArray(mail.to) && mail.to.value[0]?.address === address);
  const hooksFor = (accountId: string) => receiver.received.filter((hook) => (JSON.parse(hook.body) as { data: { accountId: string } }).data.accountId === accountId);

  const configure = async (accountId: string, extra: object = {}) => {
    const secret = newWebhookSecret();
    const email = `${accountId}@example.com`;
    const response = await call(running.baseUrl, 'PUT', `/v1/accounts/${accountId}/notification-settings`, WRITER_KEY, {
      email, webhookUrl: `${receiver.url}/${accountId}`, webhookSecret: secret, ...extra,
    });
    expect(response.status).toBe(200);
    return { secret, email };
  };

  const log = async (accountId: string) => {
    const response = await call(running.baseUrl, 'GET', `/v1/accounts/${accountId}/notifications`, READER_KEY);
    expect(response.status).toBe(200);
    return response.body.items as { channel: string; type: string; state: string; attempts: number; statusCodes: (number | null)[]; nextRetryAt: string | null }[];
  };

  /**
   * The sentinel instead of "sleep, then expect nothing more": produceAndApply has waited until the consumer
   * committed the messages (so every delivery they call for is recorded in the same transaction), and this waits
   * until the dispatcher has nothing pending for the account, so nothing more can be sent for it.
   */
  const settled = async (accountId: string) => {
    await waitFor(async () => (await log(accountId)).every((entry) => entry.state !== 'pending'), 20_000);
    return log(accountId);
  };

  beforeAll(async () => {
    schema = await createTestSchema('notification_e2e');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 });
    smtp = await startSmtp();
    receiver = await startReceiver();
    ledger = await ledgerTopic();
    running = await bootApp(overrides());
  });

  afterAll(async () => {
    await running?.app.close();
    await ledger?.close();
    await receiver?.close();
    await smtp?.close();
    await pool?.end();
    await schema?.drop();
  });

  it('crossing 20% sends one email and one signed webhook; 5% one more of each; redelivery sends nothing new', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    const { secret, email } = await configure(accountId);
    const events = [cycleStarted(accountId, 'c1'), thresholdCrossed(accountId, 'c1', 20, '199.5')];

    await produceAndApply(...events);
    await waitFor(() => mailsTo(email).length === 1 && hooksFor(accountId).length === 1);

    const mail = mailsTo(email)[0];
    expect(mail.subject).toBe('Your credits are below 20%');
    expect(mail.text).toContain('Available: 199.5 credits');
    expect(mail.text).toContain('Monthly allocation: 1000 credits');
    expect(mail.text).toContain('Allowance resets: 1 December 2099, 00:00 UTC');
    expect(mail.text).toContain('https://app.example.com/billing');
    expect(mail.html).toContain('199.5 credits');
    expect(mail.html).toContain('href="https://app.example.com/billing"');

    const hook = hooksFor(accountId)[0];
    const headers = { 'webhook-id': String(hook.headers['webhook-id']), 'webhook-timestamp': String(hook.headers['webhook-timestamp']), 'webhook-signature': String(hook.headers['webhook-signature']) };
    expect(new Webhook(secret).verify(hook.body, headers)).toMatchObject({
      type: 'credits.low',
      data: { accountId, cycleId: 'c1', thresholdPercent: 20, available: '199.5', allocation: '1000', resetsAt: '2099-12-01T00:00:00.000Z' },
    });
    expect(() => new Webhook(newWebhookSecret()).verify(hook.body, headers)).toThrow();
    expect(JSON.parse(hook.body).id).toBe(headers['webhook-id']);

    const five = thresholdCrossed(accountId, 'c1', 5, '49');
    await produceAndApply(five);
    await waitFor(() => mailsTo(email).length === 2 && hooksFor(accountId).length === 2);
    expect(mailsTo(email)[1].subject).toBe('Your credits are below 5%');
    expect(JSON.parse(hooksFor(accountId)[1].body).data.thresholdPercent).toBe(5);

    // The ledger relay re-publishes the same events (new offsets, same event ids): nothing new is sent.
    await produceAndApply(...events, five);
    await settled(accountId);
    expect(mailsTo(email)).toHaveLength(2);
    expect(hooksFor(accountId)).toHaveLength(2);
    const entries = await log(accountId);
    expect(entries).toHaveLength(4);
    expect(entries.every((entry) => entry.state === 'delivered' && entry.attempts === 1)).toBe(true);
  });

  it('a threshold re-armed by a purchase and crossed again is sent again, once per crossing, and a redelivered crossing adds nothing', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    const { email } = await configure(accountId);
    // The ledger's event ids are per decision (account, command key, index): each crossing has its own.
    const crossing = (percent: number, available: string, usageId: string) => thresholdCrossed(accountId, 'c1', percent, available, '1000', `${accountId}:${usageId}:${percent}`);
    const firstTwenty = crossing(20, '199.5', 'u-1');
    const firstFive = crossing(5, '49', 'u-2');
    await produceAndApply(cycleStarted(accountId, 'c1'), firstTwenty, firstFive);
    await waitFor(() => mailsTo(email).length === 2 && hooksFor(accountId).length === 2);

    // A pack lifts the balance above 20% (the ledger re-arms both thresholds), then usage spends it down again.
    const purchase = envelope(accountId, 'CreditsGranted', `${accountId}:pay-1`, {
      grantId: 'g-1', bucketId: 'b-1', kind: 'purchased', amount: '500', source: 'purchase', paymentReference: 'pay-1', grantedAt: '2026-11-21T10:00:00Z',
    });
    const secondTwenty = crossing(20, '150', 'u-3');
    const secondFive = crossing(5, '30', 'u-4');
    await produceAndApply(purchase, secondTwenty, secondFive);
    await waitFor(() => mailsTo(email).length === 4 && hooksFor(accountId).length === 4, 20_000);
    // The dispatcher sends an account's pending alerts concurrently: compare them as sets, not in arrival order.
    expect(mailsTo(email).map((mail) => mail.subject).sort()).toEqual([
      'Your credits are below 20%', 'Your credits are below 20%', 'Your credits are below 5%', 'Your credits are below 5%',
    ]);
    const hookBodies = hooksFor(accountId).map((hook) => JSON.parse(hook.body) as { id: string; data: { thresholdPercent: number; available: string; ledgerEventId: string; streamVersion: number } });
    expect(hookBodies.map((body) => `${body.data.thresholdPercent}@${body.data.available}`).sort()).toEqual(['20@150', '20@199.5', '5@30', '5@49']);
    // Sent concurrently, they arrive in any order; a receiver puts them back in the account's order by streamVersion.
    const inStreamOrder = [...hookBodies].sort((a, b) => a.data.streamVersion - b.data.streamVersion);
    expect(inStreamOrder.map((body) => `${body.data.thresholdPercent}@${body.data.available}`)).toEqual(['20@199.5', '5@49', '20@150', '5@30']);
    expect(new Set(hookBodies.map((body) => body.id)).size).toBe(4);

    // The relay re-publishes the second crossings (same event ids, new offsets): no third email or webhook.
    await produceAndApply(secondTwenty, secondFive, firstTwenty);
    await settled(accountId);
    expect(mailsTo(email)).toHaveLength(4);
    expect(hooksFor(accountId)).toHaveLength(4);
    const entries = await log(accountId);
    expect(entries).toHaveLength(8);
    expect(entries.every((entry) => entry.type === 'low_credit' && entry.state === 'delivered' && entry.attempts === 1)).toBe(true);
  });

  it('a crossing recorded under the per-cycle key of earlier versions is not sent again when re-published', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    const { email } = await configure(accountId);
    const crossed = thresholdCrossed(accountId, 'c1', 20, '199.5');
    await pool.query(
      `INSERT INTO "${schema.schema}".deliveries (id, notification_id, account_id, notification_type, dedupe_key, channel, event_id, content, state, give_up_at, created_at, updated_at)
       SELECT gen_random_uuid(), 'ntf_old', $1, 'low_credit', 'cycle:c1:threshold:20', channel, $2, '{}'::jsonb, 'delivered', now(), now(), now()
       FROM unnest(ARRAY['email', 'webhook']) AS channel`,
      [accountId, crossed.id],
    );
    await produceAndApply(cycleStarted(accountId, 'c1'), crossed);
    await settled(accountId);
    expect(mailsTo(email)).toHaveLength(0);
    expect(hooksFor(accountId)).toHaveLength(0);
    expect(await log(accountId)).toHaveLength(2);
  });

  it('a depletion after a purchase lifted the balance is sent again, once per depletion event', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    const { email } = await configure(accountId);
    const depleted = (usageId: string) => envelope(accountId, 'CreditsDepleted', `${accountId}:${usageId}:depleted`, { cycleId: 'c1', usageId });
    const first = depleted('u-1');
    const second = depleted('u-2');
    await produceAndApply(cycleStarted(accountId, 'c1'), first);
    await waitFor(() => mailsTo(email).length === 1 && hooksFor(accountId).length === 1);
    await produceAndApply(second, first, second);
    await waitFor(() => mailsTo(email).length === 2 && hooksFor(accountId).length === 2, 20_000);
    await settled(accountId);
    expect(mailsTo(email)).toHaveLength(2);
    expect(hooksFor(accountId).map((hook) => JSON.parse(hook.body).type)).toEqual(['credits.depleted', 'credits.depleted']);
  });

  it('a receiver that answers 500 twice then 200 gets exactly three attempts, the last recorded as delivered', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    await configure(accountId);
    receiver.respondWith(500, 500);
    const before = await webhookOutcomes();
    await produceAndApply(cycleStarted(accountId, 'c1'), thresholdCrossed(accountId, 'c1', 20, '150'));

    const webhook = await waitFor(async () => (await log(accountId)).find((entry) => entry.channel === 'webhook' && entry.state === 'delivered'));
    expect(webhook).toMatchObject({ type: 'low_credit', attempts: 3, statusCodes: [500, 500, 200], nextRetryAt: null });
    await settled(accountId);
    expect(hooksFor(accountId)).toHaveLength(3);
    const ids = new Set(hooksFor(accountId).map((hook) => hook.headers['webhook-id']));
    expect(ids.size).toBe(1);
    // GET /metrics counts each attempt by channel and outcome.
    const after = await waitFor(async () => {
      const outcomes = await webhookOutcomes();
      return outcomes.delivered > before.delivered ? outcomes : undefined;
    });
    expect({ retrying: after.retrying - before.retrying, delivered: after.delivered - before.delivered, failed: after.failed - before.failed }).toEqual({ retrying: 2, delivered: 1, failed: 0 });
  });

  // The receiver's to mend: a verification key not yet updated after a secret rotation (401), a gateway's login
  // (403), a route not deployed yet (404). Each was the alert lost at its first attempt.
  it('a receiver that answers 401, 403 and 404 and then 200 gets the alert at its fourth attempt', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    await configure(accountId);
    receiver.respondWith(401, 403, 404);
    await produceAndApply(cycleStarted(accountId, 'c1'), thresholdCrossed(accountId, 'c1', 20, '150'));
    const webhook = await waitFor(async () => (await log(accountId)).find((entry) => entry.channel === 'webhook' && entry.state !== 'pending'), 30_000);
    expect(webhook).toMatchObject({ state: 'delivered', attempts: 4, statusCodes: [401, 403, 404, 200], nextRetryAt: null });
  });

  it('410 Gone stops retrying', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    await configure(accountId);
    receiver.respondWith(410);
    const before = await webhookOutcomes();
    await produceAndApply(cycleStarted(accountId, 'c1'), thresholdCrossed(accountId, 'c1', 20, '150'));
    const webhook = await waitFor(async () => (await log(accountId)).find((entry) => entry.channel === 'webhook' && entry.state === 'failed'));
    expect(webhook).toMatchObject({ attempts: 1, statusCodes: [410], nextRetryAt: null });
    await settled(accountId);
    expect(hooksFor(accountId)).toHaveLength(1);
    const after = await waitFor(async () => {
      const outcomes = await webhookOutcomes();
      return outcomes.failed > before.failed ? outcomes : undefined;
    });
    expect({ retrying: after.retrying - before.retrying, failed: after.failed - before.failed }).toEqual({ retrying: 0, failed: 1 });
  });

  it('opting out stops that type; opting in sends renewals and purchase receipts', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    const { email } = await configure(accountId, { notificationTypes: { low_credit: false, credits_renewed: true, purchase_receipt: true } });
    await produceAndApply(
      cycleStarted(accountId, 'c7', '2500'),
      thresholdCrossed(accountId, 'c7', 20, '400', '2500'),
      envelope(accountId, 'CreditsGranted', `${accountId}:pay-1`, {
        grantId: 'g-1', bucketId: 'b-1', kind: 'purchased', amount: '1000', source: 'purchase', paymentReference: 'pay-1', grantedAt: '2026-11-21T10:00:00Z',
      }),
      envelope(accountId, 'CreditsGranted', `${accountId}:promo-1`, {
        grantId: 'g-2', bucketId: 'b-2', kind: 'promotional', amount: '5', source: 'promo', grantedAt: '2026-11-21T10:00:00Z',
      }),
    );
    await waitFor(() => mailsTo(email).length === 2 && hooksFor(accountId).length === 2);
    await settled(accountId);
    expect(mailsTo(email).map((mail) => mail.subject).sort()).toEqual(['Receipt: credits added to your account', 'Your credits were renewed']);
    expect(hooksFor(accountId).map((hook) => JSON.parse(hook.body).type).sort()).toEqual(['credits.purchased', 'credits.renewed']);
    const receipt = hooksFor(accountId).map((hook) => JSON.parse(hook.body)).find((body) => body.type === 'credits.purchased');
    expect(receipt.data).toMatchObject({ amount: '1000', paymentReference: 'pay-1' });
    expect((await log(accountId)).map((entry) => entry.type).sort()).toEqual(['credits_renewed', 'credits_renewed', 'purchase_receipt', 'purchase_receipt']);
  });

  it('a receipt of a purchase that first paid what the account owed says what was bought, not only what reached the balance', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    const { email } = await configure(accountId, { notificationTypes: { purchase_receipt: true } });
    await produceAndApply(
      envelope(accountId, 'CreditsGranted', `${accountId}:pay-2`, {
        grantId: 'g-1', bucketId: 'b-1', kind: 'purchased', amount: '700', overdraftSettled: '300', source: 'purchase', paymentReference: 'pay-2', grantedAt: '2026-11-21T10:00:00Z',
      }),
    );
    await waitFor(() => mailsTo(email).length === 1 && hooksFor(accountId).length === 1);
    await settled(accountId);
    const [mail] = mailsTo(email);
    expect(mail.text).toContain('1000 credits were bought: 300 paid what the account owed and 700 were added to its balance.');
    expect(JSON.parse(hooksFor(accountId)[0].body).data).toMatchObject({ amount: '1000', overdraftSettled: '300', paymentReference: 'pay-2' });
  });

  it('a pending retry survives closing the app: a new app on the same schema delivers it', async () => {
    // A slow retry schedule so the retry is still pending when the app goes away.
    await running.app.close();
    running = await bootApp({ ...overrides(), RETRY_BASE_DELAY_MS: '3000', RETRY_MAX_DELAY_MS: '3000' });
    const accountId = `acc-${uniqueSuffix()}`;
    await configure(accountId);
    receiver.respondWith(503);
    await produceAndApply(cycleStarted(accountId, 'c1'), thresholdCrossed(accountId, 'c1', 5, '10'));
    const pending = await waitFor(async () => (await log(accountId)).find((entry) => entry.channel === 'webhook' && entry.attempts === 1));
    expect(pending).toMatchObject({ state: 'pending', statusCodes: [503] });
    expect(pending.nextRetryAt).not.toBeNull();

    await running.app.close();
    expect(hooksFor(accountId)).toHaveLength(1);
    running = await bootApp(overrides());

    const delivered = await waitFor(async () => (await log(accountId)).find((entry) => entry.channel === 'webhook' && entry.state === 'delivered'), 20_000);
    expect(delivered).toMatchObject({ attempts: 2, statusCodes: [503, 200] });
    expect(hooksFor(accountId)).toHaveLength(2);
  });

  // The killed process may hold the retry under its claim lease (2 × WEBHOOK_TIMEOUT_MS + 30 s): the crash path.
  it('a pending retry survives kill -9 of the service process', async () => {
    await running.app.close();
    const env = testEnv({ ...overrides(), LOG_LEVEL: 'warn', RETRY_BASE_DELAY_MS: '3000', RETRY_MAX_DELAY_MS: '3000' });
    let service = await startServiceProcess('notification', env);
    running = { ...running, baseUrl: service.base };
    const accountId = `acc-${uniqueSuffix()}`;
    await configure(accountId);
    receiver.respondWith(503);
    await produceAndApply(cycleStarted(accountId, 'c1'), thresholdCrossed(accountId, 'c1', 5, '10'));
    const pending = await waitFor(async () => (await log(accountId)).find((entry) => entry.channel === 'webhook' && entry.attempts === 1));
    expect(pending).toMatchObject({ state: 'pending', statusCodes: [503] });

    await service.kill('SIGKILL');
    expect(hooksFor(accountId)).toHaveLength(1);
    receiver.respondWith(200);
    service = await startServiceProcess('notification', env);
    running = { ...running, baseUrl: service.base };
    try {
      const delivered = await waitFor(async () => (await log(accountId)).find((entry) => entry.channel === 'webhook' && entry.state === 'delivered'), 60_000);
      expect(delivered).toMatchObject({ attempts: 2, statusCodes: [503, 200] });
      expect(hooksFor(accountId)).toHaveLength(2);
    } finally {
      await service.kill();
      running = await bootApp(overrides()); // afterAll closes an in-process app
    }
  });
});
