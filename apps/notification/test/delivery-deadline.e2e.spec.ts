import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'pg';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { createTestSchema, freePort, testDatabaseUrl, uniqueSuffix, waitFor } from '@tally/testing';
import { READER_KEY, WRITER_KEY, bootApp, call, cycleStarted, ledgerTopic, newWebhookSecret, produceAndApply, thresholdCrossed, type RunningApp } from './notification.harness';

/**
 * A delivery attempt runs outside any transaction under a lease (the claim pushes next_attempt_at forward); when the
 * lease ends another dispatcher may take the row and send again. So an attempt must end before its lease does, however
 * slowly the other side answers: nodemailer's and node:http's timeouts are per idle period, and a server that answers
 * every step just inside them could hold one attempt for minutes. Real SMTP server, real HTTP receiver, real broker.
 */
describe('a delivery attempt ends within its deadline (e2e)', () => {
  let schema: { schema: string; drop: () => Promise<void> };
  let ledger: Awaited<ReturnType<typeof ledgerTopic>>;
  let pool: Pool;
  let smtp: Awaited<ReturnType<typeof startSlowSmtp>>;
  let receiver: Awaited<ReturnType<typeof startDrippingReceiver>>;
  let running: RunningApp;

  beforeAll(async () => {
    schema = await createTestSchema('notification_deadline');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 });
    ledger = await ledgerTopic();
    smtp = await startSlowSmtp();
    receiver = await startDrippingReceiver();
    running = await bootApp({
      DATABASE_SCHEMA: schema.schema, LEDGER_EVENTS_TOPIC: ledger.topic, KAFKA_GROUP_ID: ledger.group,
      SMTP_HOST: '127.0.0.1', SMTP_PORT: String(smtp.port), SMTP_TIMEOUT_MS: '1500', WEBHOOK_TIMEOUT_MS: '1500',
    });
  });

  afterAll(async () => {
    await running?.app.close();
    await ledger?.close();
    await receiver?.close();
    await smtp?.close();
    await pool?.end();
    await schema?.drop();
  });

  const deliver = async (accountId: string, settings: object) => {
    expect((await call(running.baseUrl, 'PUT', `/v1/accounts/${accountId}/notification-settings`, WRITER_KEY, settings)).status).toBe(200);
    await produceAndApply(pool, schema.schema, ledger, [cycleStarted(accountId, 'c1'), thresholdCrossed(accountId, 'c1', 20, '150')]);
  };

  const entry = async (accountId: string, channel: string) => {
    const response = await call(running.baseUrl, 'GET', `/v1/accounts/${accountId}/notifications`, READER_KEY);
    expect(response.status).toBe(200);
    return (response.body.items as { channel: string; state: string; attempts: number; lastError: string | null }[]).find((item) => item.channel === channel);
  };

  it('an SMTP server answering each step just inside the idle timeouts is abandoned at the deadline and the email retried: one email, never two', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    const email = `${accountId}@example.com`;
    smtp.slowSessions(1); // the first session answers every step after 8 s (under nodemailer's 10 s greeting timeout)
    await deliver(accountId, { email });

    // Within the deadline (1.5 s) plus a retry, not after the lease (~30 s or more) as when the attempt ran on.
    const delivered = await waitFor(async () => {
      const item = await entry(accountId, 'email');
      return item?.state === 'delivered' ? item : undefined;
    }, 15_000);
    expect(delivered.attempts).toBe(2);
    // The slow session was closed by the sender before it accepted anything: it can never deliver a second copy.
    await waitFor(() => smtp.closedSessions() >= 1, 15_000);
    expect(smtp.acceptedTo(email)).toHaveLength(1);
    expect(smtp.slowSessionsAccepted()).toBe(0);
  });

  it('a webhook receiver that answers 200 and then drips its body never ends is recorded delivered at once, not held past the deadline', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    await deliver(accountId, { webhookUrl: `${receiver.url}/${accountId}`, webhookSecret: newWebhookSecret() });
    const delivered = await waitFor(async () => {
      const item = await entry(accountId, 'webhook');
      return item?.state === 'delivered' ? item : undefined;
    }, 15_000);
    expect(delivered.attempts).toBe(1);
    expect(receiver.requestsFor(accountId)).toBe(1);
  });
});

/** A real SMTP server whose next `n` sessions answer every step after 8 s; later sessions answer at once. */
async function startSlowSmtp() {
  const accepted: ParsedMail[] = [];
  let slowLeft = 0;
  let slowAccepted = 0;
  let closed = 0;
  const slow = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (sessionId: string, callback: () => void) => {
    if (!slow.has(sessionId)) return callback();
    const timer = setTimeout(() => {
      timers.delete(timer);
      callback();
    }, 8_000);
    timers.add(timer);
  };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onConnect(session, callback) {
      if (slowLeft > 0) {
        slowLeft -= 1;
        slow.add(session.id);
      }
      later(session.id, () => callback());
    },
    onMailFrom(_address, session, callback) {
      later(session.id, () => callback());
    },
    onRcptTo(_address, session, callback) {
      later(session.id, () => callback());
    },
    onData(stream, session, callback) {
      simpleParser(stream).then((mail) => later(session.id, () => {
        accepted.push(mail);
        if (slow.has(session.id)) slowAccepted += 1;
        callback();
      }), callback);
    },
    onClose(session) {
      if (slow.has(session.id)) closed += 1;
    },
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    slowSessions: (n: number) => {
      slowLeft = n;
    },
    closedSessions: () => closed,
    slowSessionsAccepted: () => slowAccepted,
    acceptedTo: (address: string) => accepted.filter((mail) => mail.to && !Array.isArray(mail.to) && mail.to.value[0]?.address === address),
    close: () => {
      for (const timer of timers) clearTimeout(timer);
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A real HTTP receiver that answers 200 at once and then writes its body a byte every 200 ms, never ending it. */
async function startDrippingReceiver() {
  const requests = new Map<string, number>();
  const drips = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    const accountId = (req.url ?? '').split('/').pop() ?? '';
    requests.set(accountId, (requests.get(accountId) ?? 0) + 1);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('o');
      const drip = setInterval(() => res.write('k'), 200);
      drips.add(drip);
      res.on('close', () => {
        clearInterval(drip);
        drips.delete(drip);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    requestsFor: (accountId: string) => requests.get(accountId) ?? 0,
    close: () => {
      for (const drip of drips) clearInterval(drip);
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
