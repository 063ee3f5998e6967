import { Pool } from 'pg';
import { createTestSchema, testDatabaseUrl, uniqueSuffix, waitFor } from '@tally/testing';
import { READER_KEY, WRITER_KEY, bootApp, call, cycleStarted, ledgerTopic, produceAndApply, startSmtp, thresholdCrossed, type RunningApp } from './notification.harness';

/**
 * With SMTP credentials configured on a plain connection (port 587, SMTP_SECURE=false), the connection must be
 * upgraded with STARTTLS before they are sent: nodemailer upgrades only when the server offers it, so anyone on the
 * path who strips the offer from the server's reply would read the password and the alerts. Real SMTP server that
 * accepts AUTH without offering STARTTLS, real broker, real PostgreSQL.
 */
describe('SMTP credentials never go over a connection STARTTLS did not protect (e2e)', () => {
  let schema: { schema: string; drop: () => Promise<void> };
  let ledger: Awaited<ReturnType<typeof ledgerTopic>>;
  let pool: Pool;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let running: RunningApp;
  const logins: string[] = [];

  beforeAll(async () => {
    schema = await createTestSchema('notification_smtp_tls');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 });
    ledger = await ledgerTopic();
    smtp = await startSmtp({
      disabledCommands: ['STARTTLS'], authOptional: false, allowInsecureAuth: true,
      onAuth(auth, _session, callback) {
        logins.push(`${auth.username}:${auth.password}`);
        callback(null, { user: auth.username });
      },
    });
    running = await bootApp({
      DATABASE_SCHEMA: schema.schema, LEDGER_EVENTS_TOPIC: ledger.topic, KAFKA_GROUP_ID: ledger.group, SMTP_HOST: '127.0.0.1', SMTP_PORT: String(smtp.port),
      SMTP_USER: 'tally', SMTP_PASSWORD: 'not-for-the-wire', SMTP_TIMEOUT_MS: '1500',
    });
  });

  afterAll(async () => {
    await running?.app.close();
    await ledger?.close();
    await smtp?.close();
    await pool?.end();
    await schema?.drop();
  });

  it('a server that offers no STARTTLS gets no login and no email: the attempt fails, saying why, and is retried', async () => {
    const accountId = `acc-${uniqueSuffix()}`;
    expect((await call(running.baseUrl, 'PUT', `/v1/accounts/${accountId}/notification-settings`, WRITER_KEY, { email: `${accountId}@example.com` })).status).toBe(200);
    await produceAndApply(pool, schema.schema, ledger, [cycleStarted(accountId, 'c1'), thresholdCrossed(accountId, 'c1', 20, '150')]);
    const item = await waitFor(async () => {
      const { body } = await call(running.baseUrl, 'GET', `/v1/accounts/${accountId}/notifications`, READER_KEY);
      const email = (body.items as { channel: string; state: string; attempts: number; lastError: string | null }[]).find((i) => i.channel === 'email');
      return email && (email.attempts > 0 || email.state !== 'pending') ? email : undefined;
    }, 20_000);
    expect(logins).toEqual([]);
    expect(smtp.messages).toEqual([]);
    expect(item).toMatchObject({ state: 'pending', attempts: 1 }); // retried: the relay may offer it again
    expect(item.lastError).toMatch(/STARTTLS/i);
  });
});
