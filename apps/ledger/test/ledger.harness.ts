import type { INestApplication } from '@nestjs/common';
import { Kafka, Partitioners, logLevel, type Consumer, type Producer } from 'kafkajs';
import { ensureTopics } from '@tally/kafka';
import { bootstrapHttpApp, loadConfig, systemClock, type Clock } from '@tally/shared';
import { ledgerTestEnv, createTestSchema, freePort, startServiceProcess, testKafkaBrokers, uniqueSuffix, waitFor, type ServiceProcess } from '@tally/testing';
import { LedgerConfig } from '../src/config/ledger.config';
import { LEDGER_STATUS_BY_CODE } from '../src/ledger.errors';
import { LedgerModule } from '../src/ledger.module';
import { portalHttpOptions } from '../src/mint-portal-token/portal-access.provider';
import { ledgerMicroservices } from '../src/workers/ledger.kafka.transport';

export const API_KEY = 'ledger-test-admin-key';

/** Unique topics, groups and schema for one test file, so files never share state; an admin key (API_KEY). */
export function ledgerTestSettings() {
  return ledgerTestEnv([{ name: 'test', key: API_KEY, scopes: ['admin'] }]);
}

export async function createTopics(topics: string[], partitions = 3): Promise<void> {
  await ensureTopics(new Kafka({ clientId: 'test-admin', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }), topics, partitions);
}

export async function startLedger(env: Record<string, string>, schema: string, clock?: Clock): Promise<{ app: INestApplication; base: string }> {
  const port = await freePort();
  const config = loadConfig(LedgerConfig, { ...env, PORT: String(port), DATABASE_SCHEMA: schema });
  const app = await bootstrapHttpApp(LedgerModule.forRoot(config, clock), {
    service: 'ledger', title: 'test', config, statusByCode: LEDGER_STATUS_BY_CODE, host: '127.0.0.1', microservices: ledgerMicroservices,
    ...portalHttpOptions(config, clock ?? systemClock),
  });
  return { app, base: `http://127.0.0.1:${port}` };
}

export { createTestSchema };

/** Reads every message of a topic from the beginning into an array (for assertions). */
export async function collect(topic: string): Promise<{ messages: { key: string; value: string; headers: Record<string, string> }[]; stop: () => Promise<void> }> {
  const kafka = new Kafka({ clientId: 'test-collector', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING });
  const consumer: Consumer = kafka.consumer({ groupId: `collector-${uniqueSuffix()}` });
  const messages: { key: string; value: string; headers: Record<string, string> }[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      messages.push({
        key: message.key?.toString() ?? '',
        value: message.value?.toString() ?? '',
        headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, v?.toString() ?? ''])),
      });
    },
  });
  return { messages, stop: () => consumer.disconnect() };
}

/**
 * Reads a response body as text (a live balance stream's frames): `readUntil` reads on until what was read holds
 * `needle`, and fails if the stream ends first; `reader` is the body's reader, for reading past that.
 */
export function textReader(body: ReadableStream<Uint8Array>): { reader: ReadableStreamDefaultReader<Uint8Array>; readUntil: (needle: string) => Promise<void> } {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  return {
    reader,
    readUntil: async (needle) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended before ${needle}: ${text}`);
        text += decoder.decode(value, { stream: true });
      }
    },
  };
}

export const json = (base: string) => ({
  get: async (path: string) => {
    const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${API_KEY}` } });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> & Record<string, any> };
  },
  post: async (path: string, body: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  },
});

/**
 * The account as the ledger folds it from its event stream at `at` (`GET …/balance?at=`): what it has stored, where the
 * read model may not have caught up yet, so a check that nothing was stored can fail.
 */
export const storedBalance = (api: ReturnType<typeof json>, accountId: string, at = new Date()) => api.get(`/v1/accounts/${accountId}/balance?at=${at.toISOString()}`);

/** The stream version of an account as the ledger folds it at `at` (storedBalance); throws for no account. */
export async function storedVersion(api: ReturnType<typeof json>, accountId: string, at: Date): Promise<number> {
  const { status, body } = await storedBalance(api, accountId, at);
  if (status !== 200) throw new Error(`balance of ${accountId} at ${at.toISOString()}: ${status} ${JSON.stringify(body)}`);
  return body.asOfVersion as number;
}

/** The ledger in this process and usage-ingest in its own, on schemas of their own, and a producer for the Kafka-direct path. */
export interface LedgerWithIngest {
  app: INestApplication;
  /** The ledger's schema (its event store and read models). */
  schema: string;
  base: string;
  api: ReturnType<typeof json>;
  ingest: ServiceProcess;
  producer: Producer;
  stop: () => Promise<void>;
}

/**
 * Starts the usage path end to end for a test file (`name` names its schemas): every topic with ONE partition, so a
 * message the ledger could not take would hold every later balance (what these files test never happens).
 */
export async function startLedgerWithIngest(name: string, env: Record<string, string>, topics: string[]): Promise<LedgerWithIngest> {
  const ledgerSchema = await createTestSchema(`ledger_${name}`);
  const ingestSchema = await createTestSchema(`ingest_${name}`);
  await createTopics(topics, 1);
  const { app, base } = await startLedger(env, ledgerSchema.schema);
  const ingest = await startServiceProcess('usage-ingest', { ...env, DATABASE_SCHEMA: ingestSchema.schema });
  const producer = new Kafka({ clientId: `${name}-e2e`, brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }).producer({
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const stop = async () => {
    await producer.disconnect();
    await ingest.kill();
    await app.close();
    await ledgerSchema.drop();
    await ingestSchema.drop();
  };
  return { app, schema: ledgerSchema.schema, base, api: json(base), ingest, producer, stop };
}

/** Waits (20 s at most) until the account's balance read model shows `available`, and resolves with that balance. */
export function waitForAvailable(api: ReturnType<typeof json>, accountId: string, available: string): Promise<Record<string, any>> {
  return waitFor(async () => {
    const { status, body } = await api.get(`/v1/accounts/${accountId}/balance`);
    return status === 200 && body.available === available ? body : undefined;
  }, 20_000);
}

/** POST /v1/usage-events (one event or `{events}`) to a running usage-ingest with the admin key: the answer's status and body. */
export async function reportUsage(ingestBase: string, body: object): Promise<{ status: number; body: any }> {
  const response = await fetch(`${ingestBase}/v1/usage-events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/**
 * The whole path in one step, for tests that run the services some other way (compiled, over TLS): grants 10
 * credits over the ledger's API, reports one gpt-4o chat usage to usage-ingest (1,200 in × 2.5/M + 300 out × 10/M
 * = 0.006 credits) and waits until the balance shows both, which takes the relay, the projection, ingest's
 * producer and the ledger's usage consumer. Resolves with that balance.
 */
export async function grantThenChargeOneChat(ledgerBase: string, ingestBase: string, accountId: string): Promise<Record<string, any>> {
  const api = json(ledgerBase);
  const granted = await api.post(`/v1/accounts/${accountId}/grants`, { reason: 'test grant', idempotencyKey: 'welcome', amount: '10' });
  if (granted.status !== 201) throw new Error(`grant answered ${granted.status}: ${JSON.stringify(granted.body)}`);
  const reported = await reportUsage(ingestBase, { id: `${accountId}-chat-1`, accountId, occurredAt: new Date().toISOString(), feature: 'chat', model: 'gpt-4o', inputTokens: 1200, outputTokens: 300 });
  if (reported.status !== 202) throw new Error(`usage answered ${reported.status}: ${JSON.stringify(reported.body)}`);
  return waitFor(async () => {
    const { status, body } = await api.get(`/v1/accounts/${accountId}/balance`);
    return status === 200 && body.available === '9.994' && body.usedThisCycle === '0.006' ? body : undefined;
  }, 30_000);
}

/**
 * A CycleStarted message as subscription-cycle publishes it, keyed by account: a 30-day starter cycle from now with
 * 10 credits and the 20% / 5% thresholds unless `data` says otherwise.
 */
export function cycleStartedMessage(accountId: string, id: string, data: Record<string, unknown> = {}): { key: string; value: string } {
  const periodStart = new Date().toISOString();
  const cycle = {
    cycleId: id, planId: 'starter', periodStart, periodEnd: new Date(Date.now() + 30 * 86_400_000).toISOString(),
    allocation: '10', unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry', ...data,
  };
  return { key: accountId, value: JSON.stringify({ id, type: 'CycleStarted', version: 1, accountId, occurredAt: cycle.periodStart, data: cycle }) };
}
