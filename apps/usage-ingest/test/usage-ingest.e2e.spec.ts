import type { INestApplication } from '@nestjs/common';
import { Kafka, logLevel } from 'kafkajs';
import { ensureTopics } from '@tally/kafka';
import { bootstrapHttpApp, hashApiKey, loadConfig } from '@tally/shared';
import { createTestSchema, TEST_RATE_LIMITS, freePort, testDatabaseUrl, testKafkaBrokers, uniqueSuffix, waitFor } from '@tally/testing';
import { UsageIngestConfig } from '../src/config/usage-ingest.config';
import { USAGE_INGEST_STATUS_BY_CODE } from '../src/usage-ingest.errors';
import { UsageIngestModule } from '../src/usage-ingest.module';

const WRITER = 'ingest-writer-key';
const NOW = new Date().toISOString();
const READER = 'ingest-reader-key';

describe('usage-ingest over real HTTP, Kafka and PostgreSQL', () => {
  let app: INestApplication;
  let base: string;
  let dropSchema: () => Promise<void>;
  const topic = `usage.events.test.${uniqueSuffix()}`;
  const received: { key: string; value: Record<string, unknown> }[] = [];
  const kafka = new Kafka({ clientId: 'ingest-test', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `ingest-test-${uniqueSuffix()}` });

  const post = (body: unknown, key = WRITER) =>
    fetch(`${base}/v1/usage-events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify(body),
    });

  const chat = (id: string, overrides: object = {}) => ({
    id, accountId: 'acct-ingest', occurredAt: NOW, feature: 'chat', model: 'gpt-4o', inputTokens: 1200, outputTokens: 300, ...overrides,
  });

  let sentinels = 0;
  /**
   * Everything produced so far has reached this test's consumer: a new event of the same account (so the same
   * partition, after anything produced before it) has. A check that something was not produced comes after this.
   */
  const drained = async () => {
    const id = `u-sentinel-${sentinels++}`;
    expect((await post(chat(id))).status).toBe(202);
    await waitFor(() => received.some((m) => m.value.id === id));
  };

  beforeAll(async () => {
    const { schema, drop } = await createTestSchema('ingest');
    dropSchema = drop;
    await ensureTopics(kafka, [topic], 3);
    const port = await freePort();
    const config = loadConfig(UsageIngestConfig, {
      ...TEST_RATE_LIMITS,
      PORT: String(port), DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema, KAFKA_BROKERS: testKafkaBrokers().join(','),
      USAGE_EVENTS_TOPIC: topic, LOG_LEVEL: 'warn',
      API_KEYS: JSON.stringify([
        { name: 'writer', sha256: hashApiKey(WRITER), scopes: ['usage:write'] },
        { name: 'reader', sha256: hashApiKey(READER), scopes: ['accounts:read'] },
      ]),
    });
    app = await bootstrapHttpApp(UsageIngestModule.forRoot(config), {
      service: 'usage-ingest', title: 'test', config, statusByCode: USAGE_INGEST_STATUS_BY_CODE, host: '127.0.0.1',
    });
    base = `http://127.0.0.1:${port}`;
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        received.push({ key: message.key?.toString() ?? '', value: JSON.parse(message.value?.toString() ?? '{}') });
      },
    });
  });

  afterAll(async () => {
    await consumer.disconnect();
    await app?.close();
    await dropSchema?.();
  });

  it('accepts a chat event with 202 only once Kafka has it, keyed by account', async () => {
    const response = await post(chat('u-1'));
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ accepted: 1, duplicates: 0, duplicateIds: [] });
    const message = await waitFor(() => received.find((m) => m.value.id === 'u-1'));
    expect(message.key).toBe('acct-ingest');
    expect(message.value).toMatchObject({ type: 'UsageRecorded', version: 1, accountId: 'acct-ingest', data: { model: 'gpt-4o', inputTokens: 1200 } });
  });

  it('reports a repeated id as a duplicate and does not produce it again', async () => {
    await post(chat('u-dup'));
    const again = await post(chat('u-dup'));
    expect(again.status).toBe(202);
    expect(await again.json()).toMatchObject({ accepted: 0, duplicates: 1 });
    await waitFor(() => received.some((m) => m.value.id === 'u-dup'));
    await drained();
    expect(received.filter((m) => m.value.id === 'u-dup')).toHaveLength(1);
  });

  it('refuses the same id with different content as a conflict', async () => {
    await post(chat('u-conflict'));
    const response = await post(chat('u-conflict', { outputTokens: 999 }));
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
  });

  it('answers two requests racing with one id and different content 202 and 409: only the accepted content reaches Kafka', async () => {
    for (let pair = 0; pair < 10; pair += 1) {
      const id = `u-race-${pair}`;
      const [a, b] = await Promise.all([post(chat(id, { outputTokens: 10 })), post(chat(id, { outputTokens: 20 }))]);
      expect([a.status, b.status].sort()).toEqual([202, 409]);
      const accepted = a.status === 202 ? 10 : 20;
      await waitFor(() => received.some((m) => m.value.id === id));
      await drained();
      const produced = received.filter((m) => m.value.id === id);
      expect(produced.map((m) => (m.value.data as { outputTokens: number }).outputTokens)).toEqual([accepted]);
    }
  });

  it('gives back the ids of a batch refused for a conflict: they can be sent again with any content', async () => {
    await post(chat('u-taken'));
    const refused = await post({ events: [chat('u-free', { outputTokens: 1 }), chat('u-taken', { outputTokens: 999 })] });
    expect(refused.status).toBe(409);
    const later = await post(chat('u-free', { outputTokens: 2 }));
    expect(await later.json()).toEqual({ accepted: 1, duplicates: 0, duplicateIds: [] });
    await waitFor(() => received.some((m) => m.value.id === 'u-free'));
    await drained();
    expect(received.filter((m) => m.value.id === 'u-free').map((m) => (m.value.data as { outputTokens: number }).outputTokens)).toEqual([2]);
  });

  it('answers two identical requests racing with one id as accepted and duplicate (or both accepted), never a conflict', async () => {
    for (let pair = 0; pair < 10; pair += 1) {
      const id = `u-same-race-${pair}`;
      const responses = await Promise.all([post(chat(id)), post(chat(id))]);
      expect(responses.map((r) => r.status)).toEqual([202, 202]);
      await waitFor(() => received.some((m) => m.value.id === id));
    }
  });

  it('refuses usage dated more than clock skew ahead (a rate card version not in effect yet would price it), naming occurredAt, and produces nothing', async () => {
    const inAnHour = new Date(Date.now() + 3_600_000).toISOString();
    const soon = new Date(Date.now() + 60_000).toISOString();

    const ahead = await post(chat('u-an-hour-ahead', { occurredAt: inAnHour }));
    expect({ status: ahead.status, body: await ahead.json() }).toMatchObject({
      status: 400,
      body: { details: [{ field: 'occurredAt', reason: 'must not be more than 300 s in the future (MAX_FUTURE_SKEW_SECONDS)' }] },
    });
    expect((await post(chat('u-a-minute-ahead', { occurredAt: soon }))).status).toBe(202);
    await waitFor(() => received.find((m) => m.value.id === 'u-a-minute-ahead'));
    expect(received.find((m) => m.value.id === 'u-an-hour-ahead')).toBeUndefined();
  });

  it('recognises a retry with its keys in another order and occurredAt spelled with milliseconds as a duplicate, not a conflict', async () => {
    const first = chat('u-spelling', { occurredAt: '2026-11-21T10:00:00Z', metadata: { source: 'ui', session: 's-1' } });
    expect((await post(first)).status).toBe(202);
    const respelled = Object.fromEntries(Object.entries({ ...first, occurredAt: '2026-11-21T10:00:00.000Z', metadata: { session: 's-1', source: 'ui' } }).reverse());
    const again = await post(respelled);
    expect(again.status).toBe(202);
    expect(await again.json()).toEqual({ accepted: 0, duplicates: 1, duplicateIds: ['u-spelling'] });
    expect((await post({ ...first, occurredAt: '2026-11-21T11:00:00+01:00' })).status).toBe(202);
    expect((await post({ ...first, occurredAt: '2026-11-21T10:00:01Z' })).status).toBe(409);
  });

  it('reports an identical repeat inside one batch as a duplicate and produces it once', async () => {
    const response = await post({ events: [chat('u-twice'), chat('u-twice'), chat('u-once')] });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ accepted: 2, duplicates: 1, duplicateIds: ['u-twice'] });
    await waitFor(() => received.some((m) => m.value.id === 'u-once'));
    await drained();
    expect(received.filter((m) => m.value.id === 'u-twice')).toHaveLength(1);
  });

  it('refuses a batch that repeats an id with different content, naming the later one, and produces nothing', async () => {
    const response = await post({ events: [chat('u-clash'), chat('u-clash', { outputTokens: 1 })] });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'events.1.id', reason: expect.stringContaining('different content') }] });
    await drained();
    expect(received.some((m) => m.value.id === 'u-clash')).toBe(false);
  });

  it('refuses a model the rate card cannot price, naming the field (not quoting the model), and produces nothing', async () => {
    const response = await post(chat('u-unknown-model', { model: 'gpt-9-imaginary' }));
    expect(response.status).toBe(400);
    const body = (await response.json()) as { code: string; details: { field: string; reason: string }[] };
    expect(body.code).toBe('VALIDATION_FAILED');
    expect(body.details).toEqual([{ field: 'model', reason: expect.stringContaining('not on rate card 2026-11-01') }]);
    expect(JSON.stringify(body)).not.toContain('gpt-9-imaginary');
  });

  it('refuses a whole batch with a per-event error list when one event is bad', async () => {
    const response = await post({ events: [chat('b-1'), chat('b-2', { inputTokens: -5 }), chat('b-3', { occurredAt: '2999-01-01T00:00:00Z' })] });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { code: string; details: { field: string; reason: string }[] };
    expect(body.details.map((d) => d.field)).toEqual(['events.1.inputTokens', 'events.2.occurredAt']);
    await drained();
    expect(received.some((m) => m.value.id === 'b-1')).toBe(false);
  });

  it('refuses property names JavaScript reserves (constructor, __proto__, toString) with 400 naming the object, never a 500 or a silently dropped label', async () => {
    for (const name of ['constructor', 'toString']) {
      const response = await fetch(`${base}/v1/usage-events`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${WRITER}` },
        body: JSON.stringify(chat(`u-reserved-${name}`)).replace(/}$/, `,"metadata":{"${name}":"x"}}`),
      });
      expect({ name, status: response.status }).toEqual({ name, status: 400 });
      const answer = (await response.json()) as { code: string; details: { field: string; reason: string }[] };
      expect(answer).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'metadata', reason: expect.stringContaining('JavaScript reserves') }] });
    }
    // __proto__ never gets that far: the body parser refuses it (secure-json-parse), also a 400.
    const proto = await fetch(`${base}/v1/usage-events`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${WRITER}` },
      body: JSON.stringify(chat('u-reserved-proto')).replace(/}$/, ',"metadata":{"__proto__":"x"}}'),
    });
    expect({ status: proto.status, code: ((await proto.json()) as { code: string }).code }).toEqual({ status: 400, code: 'INVALID_JSON' });
    const topLevel = await fetch(`${base}/v1/usage-events`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${WRITER}` },
      body: JSON.stringify(chat('u-reserved-top')).replace(/}$/, ',"valueOf":1}'),
    });
    expect(topLevel.status).toBe(400);
    expect(((await topLevel.json()) as { details: { field: string }[] }).details).toEqual([{ field: '(root)', reason: expect.stringContaining('JavaScript reserves') }]);
    await drained();
    expect(received.some((m) => String(m.value.id).startsWith('u-reserved'))).toBe(false);
  });

  it('accepts a council event with one response per model', async () => {
    const response = await post({
      id: 'council-1', accountId: 'acct-ingest', occurredAt: new Date().toISOString(), feature: 'council',
      responses: [{ model: 'gpt-4o', inputTokens: 100, outputTokens: 50 }, { model: 'claude-sonnet-4', inputTokens: 100, outputTokens: 70 }],
    });
    expect(response.status).toBe(202);
  });

  it('refuses batches over 1,000 events (MAX_BATCH), naming the limit so a client can send smaller ones', async () => {
    const response = await post({ events: Array.from({ length: 1001 }, (_, i) => chat(`big-${i}`)) });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ code: 'BATCH_TOO_LARGE', details: { count: 1001, limit: 1000 } });
  });

  it('answers 401 without a key and 403 with a key lacking usage:write', async () => {
    expect((await post(chat('u-auth'), '')).status).toBe(401);
    const forbidden = await post(chat('u-auth'), READER);
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ code: 'FORBIDDEN' });
  });

  it('serves health (checking Kafka and PostgreSQL) and OpenAPI without a key', async () => {
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', info: { postgres: { status: 'up' }, kafka: { status: 'up' } } });
    expect((await fetch(`${base}/docs-json`)).status).toBe(200);
  });
});
