import { Pool } from 'pg';
import { parsePrometheusText, sumOf } from '@tally/metrics';
import { createTestSchema, testDatabaseUrl, uniqueSuffix, waitFor } from '@tally/testing';
import { DeliveryDispatcher } from '../src/delivery/delivery.worker';
import { READER_KEY, WRITER_KEY, bootApp, call, cycleStarted, envelope, ledgerTopic, produceAndApply, purchased, startSmtp, thresholdCrossed, type RunningApp } from './notification.harness';

/**
 * What an email's attempt ends as, and that it is recorded once. Which SMTP refusals end an email for good: a 5yz reply
 * to its recipient or its message says that this email will never be accepted; a 5yz to anything else (the sender
 * refused, sending paused, a quota: the sending side's trouble, soon mended) must be retried, or every alert of that
 * window is lost. And an email the server accepted is recorded as delivered even when the first write of that result
 * fails, instead of being sent again when its lease ends. Real SMTP server, real broker, real PostgreSQL.
 */
describe('email outcomes: SMTP refusals, and the result of a send recorded once (e2e)', () => {
  let schema: { schema: string; drop: () => Promise<void> };
  let ledger: Awaited<ReturnType<typeof ledgerTopic>>;
  let pool: Pool;
  let smtp: Awaited<ReturnType<typeof startRefusingSmtp>>;
  let running: RunningApp;

  beforeAll(async () => {
    schema = await createTestSchema('notification_smtp_refusals');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 });
    ledger = await ledgerTopic();
    smtp = await startRefusingSmtp();
    running = await bootApp({
      DATABASE_SCHEMA: schema.schema, LEDGER_EVENTS_TOPIC: ledger.topic, KAFKA_GROUP_ID: ledger.group, SMTP_HOST: '127.0.0.1', SMTP_PORT: String(smtp.port),
      SMTP_TIMEOUT_MS: '1500', WEBHOOK_TIMEOUT_MS: '1500', // a lease of ~31.5 s
      RETRY_BASE_DELAY_MS: '3000', RETRY_MAX_DELAY_MS: '3000', // a retry 1.5-3 s after a failed attempt
    });
  });

  afterAll(async () => {
    await running?.app.close();
    await ledger?.close();
    await smtp?.close();
    await pool?.end();
    await schema?.drop();
  });

  const emailEntry = async (accountId: string) => {
    const response = await call(running.baseUrl, 'GET', `/v1/accounts/${accountId}/notifications`, READER_KEY);
    expect(response.status).toBe(200);
    return (response.body.items as { channel: string; state: string; attempts: number; lastError: string | null }[]).find((item) => item.channel === 'email');
  };
  /** tally_notification_deliveries_total of the email channel for `outcome`, from the running app's GET /metrics. */
  const emailOutcomeCount = async (outcome: string) =>
    sumOf(parsePrometheusText(await (await fetch(`${running.baseUrl}/metrics`)).text()), 'tally_notification_deliveries_total', { channel: 'email', outcome });
  /**
   * A balance alert's email delivery written straight into the table, as the consumer and earlier attempts leave it:
   * its type, the ledger event's stream version, the content beyond the common fields, its state and attempts, when it
   * is due (pending only) and when its retry window ends, from now.
   */
  const queueAlert = (accountId: string, alert: { type?: string; streamVersion: number; extra: object; state?: string; attempts?: number; dueInMs?: number; giveUpInMs?: number }) => {
    const { type = 'low_credit', streamVersion, extra, state = 'pending', attempts = 1, dueInMs = 0, giveUpInMs = 86_400_000 } = alert;
    const id = `${accountId}:${streamVersion}`;
    const content = { notificationId: `ntf-${id}`, type, accountId, eventId: id, streamVersion, occurredAt: new Date().toISOString(), cycleId: 'c1', allocation: '1000', ...extra };
    return pool.query(
      `INSERT INTO "${schema.schema}".deliveries (id, notification_id, account_id, notification_type, dedupe_key, channel, event_id, content, state, attempts, attempt_log, next_attempt_at, give_up_at, created_at, updated_at)
       VALUES (gen_random_uuid(), $1, $2, $3, $4, 'email', $5, $6, $7, $8, '[]'::jsonb, CASE WHEN $7 = 'pending' THEN now() + $9 * interval '1 millisecond' END,
               now() + $10 * interval '1 millisecond', now(), now())`,
      [content.notificationId, accountId, type, `event:${streamVersion}`, id, JSON.stringify(content), state, attempts, dueInMs, giveUpInMs],
    );
  };
  /** The email delivery of the account's alert of that stream version: its state, attempts, last error, and how soon it is due. */
  const alertRow = async (accountId: string, streamVersion: number) =>
    (await pool.query<{ state: string; attempts: number; last_error: string | null; due_in_ms: number }>(
      `SELECT state, attempts, last_error, extract(epoch FROM next_attempt_at - now()) * 1000 AS due_in_ms FROM "${schema.schema}".deliveries
        WHERE account_id = $1 AND (content->>'streamVersion')::int = $2`, [accountId, streamVersion])).rows[0];
  /** That row once it is no longer pending. */
  const settledAlert = (accountId: string, streamVersion: number) =>
    waitFor(async () => {
      const row = await alertRow(accountId, streamVersion);
      return row.state !== 'pending' ? row : undefined;
    }, 20_000);
  const configure = async (accountId: string, settings: object = { email: `${accountId}@example.com` }) => {
    expect((await call(running.baseUrl, 'PUT', `/v1/accounts/${accountId}/notification-settings`, WRITER_KEY, settings)).status).toBe(200);
  };
  const alert = async (accountId: string, email: string) => {
    await configure(accountId, { email });
    await produceAndApply(pool, schema.schema, ledger, [cycleStarted(accountId, 'c1'), thresholdCrossed(accountId, 'c1', 20, '150')]);
  };
  /** A 20% alert of cycle c1 (150 of 1000 left) whose first attempt got 451: its retry is due in 1.5-3 s. */
  const alertAwaitingRetry = async (accountId: string) => {
    smtp.deferSenderTimes(1);
    await alert(accountId, `${accountId}@example.com`);
    await waitFor(async () => ((await emailEntry(accountId))?.attempts ?? 0) >= 1, 10_000);
  };
  /** The account's email ended cancelled after its one failed attempt, for `reason`, and no mail reached it. */
  const expectCancelledUnsent = async (accountId: string, reason: string) => {
    const item = await settled(accountId);
    expect(item).toMatchObject({ state: 'cancelled', attempts: 1 });
    expect(item.lastError).toContain(reason);
    expect(smtp.acceptedTo(`${accountId}@example.com`)).toHaveLength(0);
  };
  const settled = (accountId: string, timeoutMs = 20_000) =>
    waitFor(async () => {
      const item = await emailEntry(accountId);
      return item && item.state !== 'pending' ? item : undefined;
    }, timeoutMs);

  it('a sender refused with 554 (sending paused) is retried and the email delivered once', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    smtp.refuseSenderTimes(1);
    await alert(accountId, `${accountId}@example.com`);
    expect(await settled(accountId)).toMatchObject({ state: 'delivered', attempts: 2 });
    expect(smtp.acceptedTo(`${accountId}@example.com`)).toHaveLength(1);
  });

  it('an email accepted by the server whose "delivered" write fails once (PostgreSQL restarting, say) is recorded, not sent again', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    // The first write of a delivered state for this account fails, as a statement on a connection PostgreSQL drops would.
    const s = `"${schema.schema}"`;
    await pool.query(`CREATE SEQUENCE ${s}.delivered_writes`);
    await pool.query(`CREATE FUNCTION ${s}.fail_first_delivered() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.state = 'delivered' AND NEW.account_id = '${accountId}' AND nextval('${schema.schema}.delivered_writes') = 1 THEN
          RAISE EXCEPTION 'the test drops the first delivered write';
        END IF;
        RETURN NEW;
      END $$`);
    await pool.query(`CREATE TRIGGER fail_first_delivered BEFORE UPDATE ON ${s}.deliveries FOR EACH ROW EXECUTE FUNCTION ${s}.fail_first_delivered()`);
    await alert(accountId, `${accountId}@example.com`);
    expect(await settled(accountId, 60_000)).toMatchObject({ state: 'delivered', attempts: 1 });
    expect(smtp.acceptedTo(`${accountId}@example.com`)).toHaveLength(1);
  }, 90_000);

  it('a low-credit alert still waiting for a retry when the next cycle starts is cancelled, not sent after the renewal', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    await alertAwaitingRetry(accountId);
    // Waiting for its retry, it shows in the backlog gauges.
    const samples = parsePrometheusText(await (await fetch(`${running.baseUrl}/metrics`)).text());
    expect(sumOf(samples, 'tally_notification_pending_deliveries', {})).toBeGreaterThanOrEqual(1);
    expect(sumOf(samples, 'tally_notification_oldest_pending_age_seconds', {})).toBeGreaterThan(0);
    await produceAndApply(pool, schema.schema, ledger, [cycleStarted(accountId, 'c2')]);
    await expectCancelledUnsent(accountId, 'c2');
  });

  it('a low-credit alert still waiting for a retry when the account opts out of low-credit alerts is cancelled, not sent', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    await alertAwaitingRetry(accountId);
    await configure(accountId, { email: `${accountId}@example.com`, notificationTypes: { low_credit: false } });
    await expectCancelledUnsent(accountId, 'low_credit');
  });

  it('a low-credit alert still waiting for a retry when a purchase lifts the balance back over its threshold is cancelled, not sent', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    await alertAwaitingRetry(accountId);
    await produceAndApply(pool, schema.schema, ledger, [purchased(accountId, 'c1', '500', '650')]);
    await expectCancelledUnsent(accountId, 'credits came back');
  });

  // The ledger ends depletion when a hold gives its credits back (released, or settled for less): an alert of it still
  // waiting said "out of credits" while the account had them, and a product locking its users out on it stayed locked.
  it.each([
    ['released', (accountId: string) => envelope(accountId, 'HoldReleased', `${accountId}:hold-b:released`, { holdId: 'hold-b', amount: '4', reason: 'released' })],
    ['settled for less', (accountId: string) => envelope(accountId, 'HoldSettled', `${accountId}:hold-b:settled`, { holdId: 'hold-b', usageId: 'u-b', heldAmount: '6', settledAmount: '2', releasedAmount: '4' })],
  ])('a depletion alert still waiting for a retry when a hold %s gives credits back is cancelled, not sent', async (_how, holdEvent) => {
    const accountId = `acc-${uniqueSuffix()}`;
    await configure(accountId);
    smtp.deferSenderTimes(1);
    await produceAndApply(pool, schema.schema, ledger, [cycleStarted(accountId, 'c1'), envelope(accountId, 'CreditsDepleted', `${accountId}:c1:depleted`, { cycleId: 'c1' })]);
    await waitFor(async () => ((await emailEntry(accountId))?.attempts ?? 0) >= 1, 10_000);
    const back = { ...holdEvent(accountId), balanceAfter: { ...purchased(accountId, 'c1', '0', '4').balanceAfter, purchased: '4' } };
    await produceAndApply(pool, schema.schema, ledger, [back]);
    await expectCancelledUnsent(accountId, 'credits came back');
  });

  // Its cycle ended while it waited for a retry, and the renewal has not reached the service yet (the scheduler's wake-up
  // and the ledger take under a second; an outage longer): sent, it said "Allowance resets" on a date already past.
  it('a low-credit alert whose cycle ended before its retry is cancelled as superseded, not sent with a reset date in the past', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    await configure(accountId);
    const periodEnd = new Date(Date.now() + 1_000).toISOString();
    const started = envelope(accountId, 'CycleStarted', `${accountId}:c1:started`, {
      cycleId: 'c1', planId: 'starter', periodStart: new Date(Date.now() - 86_400_000).toISOString(), periodEnd, allocation: '1000',
      unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry',
    });
    smtp.deferSenderTimes(1); // the first attempt fails; the retry comes 1.5-3 s later, after the cycle's end
    await produceAndApply(pool, schema.schema, ledger, [started, thresholdCrossed(accountId, 'c1', 20, '150')]);
    const item = await settled(accountId);
    expect(item).toMatchObject({ state: 'cancelled', lastError: expect.stringContaining(`superseded: cycle c1 ended at ${periodEnd}`) });
    expect(smtp.acceptedTo(`${accountId}@example.com`)).toHaveLength(0);
  });

  it('a purchase delivered again (the relay republishing after a crash) does not cancel an alert of a later crossing', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    await configure(accountId);
    const purchase = purchased(accountId, 'c1', '500', '650');
    smtp.deferSenderTimes(1); // the crossing's alert waits for its retry
    await produceAndApply(pool, schema.schema, ledger, [cycleStarted(accountId, 'c1'), purchase, thresholdCrossed(accountId, 'c1', 20, '150')]);
    await waitFor(async () => ((await emailEntry(accountId))?.attempts ?? 0) >= 1, 10_000);
    await produceAndApply(pool, schema.schema, ledger, [purchase]); // the same event again, its balance older than the crossing
    expect(await settled(accountId)).toMatchObject({ state: 'delivered', attempts: 2 });
  });

  it.each([
    ['5% threshold', (accountId: string) => thresholdCrossed(accountId, 'c1', 5, '40'), 'low_credit', 'Your credits are below 5%'],
    ['depletion', (accountId: string) => envelope(accountId, 'CreditsDepleted', `${accountId}:c1:depleted`, { cycleId: 'c1' }), 'credits_depleted', 'You are out of credits'],
  ])('a 20%% alert still waiting for a retry when the %s comes is superseded: cancelled, only the newer one sent', async (_name, newer, type, subject) => {
    const accountId = `acc-${uniqueSuffix()}`;
    await alertAwaitingRetry(accountId);
    await produceAndApply(pool, schema.schema, ledger, [newer(accountId)]);
    const items = await waitFor(async () => {
      const { body } = await call(running.baseUrl, 'GET', `/v1/accounts/${accountId}/notifications`, READER_KEY);
      const emails = (body.items as { channel: string; type: string; state: string; lastError: string | null }[]).filter((item) => item.channel === 'email');
      return emails.length === 2 && emails.every((item) => item.state !== 'pending') ? emails : undefined;
    }, 20_000);
    expect(items.map((item) => `${item.type} ${item.state}`).sort()).toEqual([`${type} delivered`, 'low_credit cancelled'].sort());
    expect(items.find((item) => item.state === 'cancelled')?.lastError).toContain('superseded');
    expect(smtp.acceptedTo(`${accountId}@example.com`).map((mail) => mail.subject)).toEqual([subject]);
  });

  // The newer alert was queued while the older had not been tried yet (one batch, a backlog): the older's first
  // attempt then fails, and its retry would arrive after the newer one.
  it('a 20% alert whose first attempt fails after a newer balance alert was queued is superseded, not retried', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    await configure(accountId);
    smtp.deferSenderTimes(1);
    await queueAlert(accountId, { type: 'credits_depleted', streamVersion: 8, extra: { available: '0' }, attempts: 0, dueInMs: 4_000 }); // due only after the older one is tried
    await queueAlert(accountId, { streamVersion: 7, extra: { thresholdPercent: 20, available: '150' }, attempts: 0 });
    const items = await waitFor(async () => {
      const { body } = await call(running.baseUrl, 'GET', `/v1/accounts/${accountId}/notifications`, READER_KEY);
      const emails = (body.items as { channel: string; type: string; state: string; attempts: number; lastError: string | null }[]).filter((item) => item.channel === 'email');
      return emails.length === 2 && emails.every((item) => item.state !== 'pending') ? emails : undefined;
    }, 20_000);
    expect(items.find((item) => item.type === 'low_credit')).toMatchObject({ state: 'cancelled', attempts: 1, lastError: expect.stringContaining('superseded') });
    expect(items.find((item) => item.type === 'credits_depleted')).toMatchObject({ state: 'delivered' });
    expect(smtp.acceptedTo(`${accountId}@example.com`).map((mail) => mail.subject)).toEqual(['You are out of credits']);
  });

  // The 20% and 5% alerts both failed their first attempt; a purchase then lifted the balance above 5% (its alert
  // cancelled) but not above 20%: the 20% retry is what the account should still hear, not "superseded" by a cancelled one.
  it.each(['cancelled', 'failed'])('a 20%% alert waiting for its retry is sent when the newer balance alert on its channel was %s, not queued', async (newerState) => {
    const accountId = `acc-${uniqueSuffix()}`;
    await configure(accountId);
    await queueAlert(accountId, { streamVersion: 12, extra: { thresholdPercent: 5, available: '40' }, state: newerState });
    await queueAlert(accountId, { streamVersion: 10, extra: { thresholdPercent: 20, available: '150' } }); // its retry, due now
    const retried = await settledAlert(accountId, 10);
    expect(retried).toMatchObject({ state: 'delivered', attempts: 2, last_error: null });
    expect(smtp.acceptedTo(`${accountId}@example.com`).map((mail) => mail.subject)).toEqual(['Your credits are below 20%']);
  });

  // The 20% retry came due while the 5% alert was still pending (not yet tried): whether that one reaches the account was
  // not known. Cancelling the 20% retry then lost it for good once the 5% alert was cancelled (credits came back above 5%).
  it('a 20% alert whose retry comes due while a newer balance alert is pending waits for it, and is sent once that one is cancelled', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    await configure(accountId);
    const older = () => alertRow(accountId, 10);
    await queueAlert(accountId, { streamVersion: 12, extra: { thresholdPercent: 5, available: '40' }, dueInMs: 600_000 }); // its retry due in 10 minutes
    await queueAlert(accountId, { streamVersion: 10, extra: { thresholdPercent: 20, available: '150' } }); // its retry, due now
    // Tried and put back: still pending, due again later (at most RETRY_MAX_DELAY_MS, 3 s here), nothing sent.
    await waitFor(async () => {
      const row = await older();
      return row.state !== 'pending' || Number(row.due_in_ms) > 1_000 ? row : undefined;
    }, 20_000);
    expect(await older()).toMatchObject({ state: 'pending', attempts: 1 });
    expect(smtp.acceptedTo(`${accountId}@example.com`)).toHaveLength(0);

    await pool.query(`UPDATE "${schema.schema}".deliveries SET state = 'cancelled', last_error = 'credits came back' WHERE account_id = $1 AND (content->>'streamVersion')::int = 12`, [accountId]);
    const retried = await settledAlert(accountId, 10);
    expect(retried).toMatchObject({ state: 'delivered', attempts: 2, last_error: null });
    expect(smtp.acceptedTo(`${accountId}@example.com`).map((mail) => mail.subject)).toEqual(['Your credits are below 20%']);
  });

  it('a 20% alert whose retry window is over does not wait for a newer pending one: it is tried at once', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    await configure(accountId);
    await queueAlert(accountId, { streamVersion: 12, extra: { thresholdPercent: 5, available: '40' }, dueInMs: 600_000 }); // pending, due in 10 minutes
    await queueAlert(accountId, { streamVersion: 10, extra: { thresholdPercent: 20, available: '150' }, giveUpInMs: -60_000 }); // its retry, due now, its window over
    const tried = await settledAlert(accountId, 10);
    expect(tried).toMatchObject({ state: 'delivered', attempts: 2 });
    expect(smtp.acceptedTo(`${accountId}@example.com`).map((mail) => mail.subject)).toEqual(['Your credits are below 20%']);
  });

  it('a purchase that leaves the balance still below a threshold keeps its alert; one in the same batch after the crossing cancels it before any attempt', async () => {
    const [still, lifted] = [`acc-${uniqueSuffix()}`, `acc-${uniqueSuffix()}`];
    for (const accountId of [still, lifted]) await configure(accountId);
    await produceAndApply(pool, schema.schema, ledger, [
      cycleStarted(still, 'c1'), thresholdCrossed(still, 'c1', 20, '150'), purchased(still, 'c1', '10', '160'),
      cycleStarted(lifted, 'c1'), thresholdCrossed(lifted, 'c1', 20, '150'), purchased(lifted, 'c1', '100', '250'),
    ]);
    expect(await settled(still)).toMatchObject({ state: 'delivered', attempts: 1 });
    expect(await settled(lifted)).toMatchObject({ state: 'cancelled', attempts: 0 });
    expect(smtp.acceptedTo(`${lifted}@example.com`)).toHaveLength(0);
  });

  it('a delivery whose attempts keep throwing before any outcome is recorded ends failed once past its retry window, not taken again for ever', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    await configure(accountId);
    // A type this version cannot render (left by a newer version rolled back): every attempt throws. Its window is over.
    const content = { notificationId: `ntf_${accountId}`, type: 'credits_expiring', accountId, eventId: `e-${accountId}`, occurredAt: new Date().toISOString() };
    await pool.query(
      `INSERT INTO "${schema.schema}".deliveries (id, notification_id, account_id, notification_type, dedupe_key, channel, event_id, content, state,
         attempts, attempt_log, next_attempt_at, give_up_at, created_at, updated_at)
       VALUES (gen_random_uuid(), $1, $2, 'credits_expiring', 'k', 'email', $3, $4, 'pending', 0, '[]'::jsonb, now(), now() - interval '1 hour', now() - interval '1 day', now())`,
      [content.notificationId, accountId, content.eventId, JSON.stringify(content)],
    );
    const failedBefore = await emailOutcomeCount('failed');
    const item = await settled(accountId);
    expect(item).toMatchObject({ state: 'failed' });
    expect(item.lastError).toContain('retry window');
    // Counted as a delivery given up, as a recorded outcome that gives up is.
    expect(await emailOutcomeCount('failed')).toBe(failedBefore + 1);
  });

  it('settled deliveries older than DELIVERY_RETENTION_DAYS (90) are purged; recent and pending ones stay', async () => {
    const [old, recent, waiting] = [`acc-${uniqueSuffix()}`, `acc-${uniqueSuffix()}`, `acc-${uniqueSuffix()}`];
    await alert(old, `${old}@example.com`);
    await alert(recent, `${recent}@example.com`);
    expect(await settled(old)).toMatchObject({ state: 'delivered' });
    expect(await settled(recent)).toMatchObject({ state: 'delivered' });
    await alertAwaitingRetry(waiting);
    const s = `"${schema.schema}"`;
    await pool.query(`UPDATE ${s}.deliveries SET updated_at = now() - interval '91 days', created_at = now() - interval '91 days' WHERE account_id = ANY($1)`, [[old, waiting]]);

    await running.app.get(DeliveryDispatcher).purgeSettled();
    const { rows } = await pool.query<{ account_id: string; state: string }>(`SELECT account_id, state FROM ${s}.deliveries WHERE account_id = ANY($1)`, [[old, recent, waiting]]);
    expect(rows.map((row) => `${row.account_id === old ? 'old' : row.account_id === recent ? 'recent' : 'waiting'}:${row.state}`).sort()).toEqual(['recent:delivered', 'waiting:pending']);
  });

  it('a recipient refused with 550 (no such user) fails at once, never retried; the error kept and logged does not quote the address', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    await alert(accountId, `unknown-${accountId}@example.com`);
    const item = await settled(accountId);
    expect(item).toMatchObject({ state: 'failed', attempts: 1 });
    // The server's reply quotes the recipient, as Postfix's does; the customer's address stays out of logs and errors.
    expect(item.lastError).toContain('5.1.1');
    expect(item.lastError).not.toContain('example.com');
  });

  it('a recipient refused with 554 5.7.1 "Relay access denied" (the sending side\'s trouble: a changed IP, a lost login) is retried and delivered once', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    smtp.denyRelayTimes(1);
    await alert(accountId, `${accountId}@example.com`);
    expect(await settled(accountId)).toMatchObject({ state: 'delivered', attempts: 2 });
    expect(smtp.acceptedTo(`${accountId}@example.com`)).toHaveLength(1);
  });
});

/**
 * A real SMTP server: refuses MAIL FROM with 554 the next `refuseSenderTimes` times and with 451 the next
 * `deferSenderTimes` times, the next `denyRelayTimes` recipients with 554 5.7.1, and every recipient whose address
 * starts with "unknown-" with 550; its refusals quote the recipient, as Postfix's do.
 */
async function startRefusingSmtp() {
  let refuseSender = 0;
  let deferSender = 0;
  let denyRelay = 0;
  const refusal = (code: number, message: string): Error => Object.assign(new Error(message), { responseCode: code });
  const smtp = await startSmtp({
    onMailFrom(_address, _session, callback) {
      if (refuseSender > 0) {
        refuseSender -= 1;
        return callback(refusal(554, '5.7.0 sending paused for this account, try again later'));
      }
      if (deferSender > 0) {
        deferSender -= 1;
        return callback(refusal(451, '4.3.0 try again later'));
      }
      callback();
    },
    onRcptTo(address, _session, callback) {
      if (address.address.startsWith('unknown-')) return callback(refusal(550, `5.1.1 <${address.address}>: Recipient address rejected: User unknown`));
      if (denyRelay > 0) {
        denyRelay -= 1;
        return callback(refusal(554, `5.7.1 <${address.address}>: Relay access denied`));
      }
      callback();
    },
  });
  return {
    port: smtp.port,
    refuseSenderTimes: (n: number) => {
      refuseSender = n;
    },
    deferSenderTimes: (n: number) => {
      deferSender = n;
    },
    denyRelayTimes: (n: number) => {
      denyRelay = n;
    },
    acceptedTo: (address: string) => smtp.messages.filter((mail) => mail.to && !Array.isArray(mail.to) && mail.to.value[0]?.address === address),
    close: smtp.close,
  };
}
