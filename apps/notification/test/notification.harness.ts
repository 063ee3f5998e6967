import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import type { Pool } from 'pg';
import { KafkaProducer, createKafkaClient, ensureTopics, readStoredOffsets } from '@tally/kafka';
import { bootstrapHttpApp, hashApiKey, loadConfig } from '@tally/shared';
import { freePort, TEST_RATE_LIMITS, testDatabaseUrl, testKafkaBrokers, uniqueSuffix, waitFor } from '@tally/testing';
import type { Clock } from '@tally/shared';
import { NotificationConfig } from '../src/config/notification.config';
import { buildNotificationModule, notificationMicroservices } from '../src/notification.module';
import { NOTIFICATION_STATUS_BY_CODE } from '../src/notification.errors';

export const WRITER_KEY = 'test-writer-key';
export const READER_KEY = 'test-reader-key';

export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;

/**
 * A real SMTP server on 127.0.0.1 keeping what it accepted, each message parsed with mailparser and stamped with when
 * it arrived; by default without STARTTLS and AUTH (`hooks` may change that, or refuse senders or recipients).
 */
export async function startSmtp(
  hooks: Pick<SMTPServerOptions, 'onMailFrom' | 'onRcptTo' | 'onAuth' | 'disabledCommands' | 'authOptional' | 'allowInsecureAuth'> = {},
): Promise<{ port: number; messages: ReceivedMail[]; close: () => Promise<void> }> {
  const messages: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    ...hooks,
    onData(stream, _session, callback) {
      simpleParser(stream).then((mail) => {
        messages.push(Object.assign(mail, { receivedAt: Date.now() }));
        callback();
      }, callback);
    },
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { port, messages, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

export type ReceivedMail = ParsedMail & { receivedAt: number };

export interface ReceivedWebhook {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  receivedAt: number;
}

/** A real HTTP receiver on 127.0.0.1; answers with queued statuses first, then `defaultStatus`. */
export async function startReceiver(): Promise<{
  url: string; received: ReceivedWebhook[]; respondWith: (...statuses: number[]) => void; setDefault: (status: number) => void; close: () => Promise<void>;
}> {
  const received: ReceivedWebhook[] = [];
  const queue: number[] = [];
  let defaultStatus = 200;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), receivedAt: Date.now() });
      res.statusCode = queue.shift() ?? defaultStatus;
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    respondWith: (...statuses) => queue.push(...statuses),
    setDefault: (status) => {
      defaultStatus = status;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export function testConfig(overrides: Record<string, string>): NotificationConfig {
  return loadConfig(NotificationConfig, testEnv(overrides));
}

/** The environment of a test notification service (also for running it as a separate process). */
export function testEnv(overrides: Record<string, string>): Record<string, string> {
  return {
    ...TEST_RATE_LIMITS,
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: testDatabaseUrl(),
    KAFKA_BROKERS: testKafkaBrokers().join(','),
    API_KEYS: JSON.stringify([
      { name: 'writer', sha256: hashApiKey(WRITER_KEY), scopes: ['accounts:read', 'notifications:write'] },
      { name: 'reader', sha256: hashApiKey(READER_KEY), scopes: ['accounts:read'] },
    ]),
    WEBHOOK_HTTP_ALLOWLIST: '127.0.0.1',
    WEBHOOK_TIMEOUT_MS: '2000',
    SMTP_TIMEOUT_MS: '2000',
    RETRY_BASE_DELAY_MS: '200',
    RETRY_MAX_DELAY_MS: '1000',
    DISPATCH_INTERVAL_MS: '100',
    BILLING_URL: 'https://app.example.com/billing',
    MAIL_FROM: 'Tally <alerts@example.com>',
    ...overrides,
  };
}

export interface RunningApp {
  app: INestApplication;
  baseUrl: string;
  config: NotificationConfig;
}

/** Boots the real app (real bootstrap, real Kafka and PostgreSQL) on a free loopback port. */
export async function bootApp(overrides: Record<string, string>, clock?: Clock): Promise<RunningApp> {
  const port = await freePort();
  const config = testConfig({ PORT: String(port), ...overrides });
  const app = await bootstrapHttpApp(buildNotificationModule({ config, clock }), {
    service: 'notification', title: 'Tally notification', config, statusByCode: NOTIFICATION_STATUS_BY_CODE, host: '127.0.0.1',
    microservices: notificationMicroservices,
  });
  return { app, baseUrl: `http://127.0.0.1:${port}`, config };
}

/** A test-unique ledger events topic (created up front) and a producer for it. */
export async function ledgerTopic(): Promise<{ topic: string; group: string; produce: (envelopes: LedgerEnvelope[]) => Promise<string>; close: () => Promise<void> }> {
  const suffix = uniqueSuffix();
  const topic = `test.notification.ledger.${suffix}`;
  const kafka = createKafkaClient({ clientId: `notification-test-${suffix}`, brokers: testKafkaBrokers() });
  await ensureTopics(kafka, [topic], 1);
  const producer = new KafkaProducer(kafka);
  return {
    topic,
    group: `notification-test-${suffix}`,
    /** Resolves with the offset of the last message written (single partition). */
    produce: async (envelopes) => {
      const metadata = await producer.sendEnvelopes(topic, envelopes);
      return (BigInt(metadata[0].baseOffset ?? '0') + BigInt(envelopes.length - 1)).toString();
    },
    close: () => producer.disconnect(),
  };
}

/**
 * Produces to the test's ledger topic and waits until the service's consumer stored those offsets in PostgreSQL: every
 * delivery the messages call for is then recorded (in the same transaction).
 */
export async function produceAndApply(pool: Pool, schema: string, ledger: Awaited<ReturnType<typeof ledgerTopic>>, envelopes: LedgerEnvelope[]): Promise<void> {
  const last = BigInt(await ledger.produce(envelopes));
  await waitFor(async () => ((await readStoredOffsets(pool, schema, ledger.group, ledger.topic)).get(0) ?? -1n) >= last, 30_000);
}

export interface LedgerEnvelope {
  id: string;
  type: string;
  version: number;
  accountId: string;
  occurredAt: string;
  streamVersion: number;
  data: object;
  balanceAfter?: object;
}

let streamVersion = 0;
export const envelope = (accountId: string, type: string, id: string, data: object): LedgerEnvelope => ({
  id, type, version: 1, accountId, occurredAt: new Date().toISOString(), streamVersion: ++streamVersion, data,
});

export const cycleStarted = (accountId: string, cycleId: string, allocation = '1000') =>
  envelope(accountId, 'CycleStarted', `${accountId}:${cycleId}:started`, {
    cycleId, planId: 'starter', periodStart: '2099-11-01T00:00:00Z', periodEnd: '2099-12-01T00:00:00Z', allocation,
    unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry',
  });

/** `id` defaults to one per (cycle, threshold); a re-armed threshold crossed again is a new ledger event with its own id. */
export const thresholdCrossed = (accountId: string, cycleId: string, percent: number, available: string, allocation = '1000', id = `${accountId}:${cycleId}:threshold:${percent}`) =>
  envelope(accountId, 'LowCreditThresholdCrossed', id, {
    thresholdPercent: percent, cycleId, available, allocation,
  });

/** A purchase of `amount` credits that left the account with `available` of `allocation` in cycle `cycleId`. */
export const purchased = (accountId: string, cycleId: string, amount: string, available: string, allocation = '1000') => ({
  ...envelope(accountId, 'CreditsGranted', `${accountId}:purchase:${amount}:${available}`, {
    grantId: `purchase:${accountId}:${available}`, bucketId: `purchase:${accountId}:${available}`, kind: 'purchased', amount, source: 'purchase', grantedAt: new Date().toISOString(),
  }),
  balanceAfter: {
    available, allowance: '0', promotional: '0', purchased: amount, held: '0', overdraft: '0', allocation, usedThisCycle: '0',
    cycleId, cycleEnd: '2099-12-01T00:00:00.000Z', planId: 'starter', unlimited: false,
  },
});

/** JSON HTTP call against the app. */
export async function call(baseUrl: string, method: string, path: string, key: string | undefined, body?: unknown): Promise<{ status: number; body: any; text: string }> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, text };
}

export { sleep };
