import type { INestApplication } from '@nestjs/common';
import { Kafka, logLevel } from 'kafkajs';
import { Client } from 'pg';
import { ensureTopics } from '@tally/kafka';
import { bootstrapHttpApp, hashApiKey, loadConfig } from '@tally/shared';
import {
  ECHO_MARKER, createTestSchema, freePort, headerCases, mutatedBodyCases, problemWith, rawBodyCases, sendAll, testDatabaseUrl,
  testKafkaBrokers, uniqueSuffix, urlCases, type MalformedRequest,
} from '@tally/testing';
import { UsageIngestConfig } from '../src/config/usage-ingest.config';
import { USAGE_INGEST_STATUS_BY_CODE } from '../src/usage-ingest.errors';
import { UsageIngestModule } from '../src/usage-ingest.module';

const KEY = 'fuzz-writer-key';
const SEED = 20261130;

/** Malformed requests against the real service: never a 5xx, always `{code, message}`, nothing produced or stored. */
describe('usage-ingest refuses malformed requests cleanly', () => {
  let app: INestApplication;
  let base: string;
  let schema: string;
  let dropSchema: () => Promise<void>;
  const topic = `usage.events.fuzz.${uniqueSuffix()}`;
  const kafka = new Kafka({ clientId: 'ingest-fuzz', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING });

  const chat = (id: string, overrides: object = {}) => ({
    id, accountId: 'acct-fuzz', occurredAt: new Date().toISOString(), feature: 'chat', model: 'gpt-4o', inputTokens: 10, outputTokens: 5,
    metadata: { source: 'chat-ui' }, ...overrides,
  });
  const jsonPost = (label: string, body: unknown): MalformedRequest => ({
    label, method: 'POST', path: '/v1/usage-events', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), mustRefuse: true,
  });

  const stored = async () => {
    const client = new Client({ connectionString: testDatabaseUrl() });
    await client.connect();
    const { rows } = await client.query(`select count(*)::int as n from "${schema}".accepted_usage`);
    await client.end();
    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    return { acceptedRows: rows[0].n as number, messages: offsets.reduce((sum, o) => sum + Number(o.high), 0) };
  };

  beforeAll(async () => {
    const created = await createTestSchema('ingest_fuzz');
    ({ schema, drop: dropSchema } = created);
    await ensureTopics(kafka, [topic], 3);
    const port = await freePort();
    const config = loadConfig(UsageIngestConfig, {
      PORT: String(port), DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema, KAFKA_BROKERS: testKafkaBrokers().join(','),
      USAGE_EVENTS_TOPIC: topic, LOG_LEVEL: 'silent',
      API_KEYS: JSON.stringify([{ name: 'writer', sha256: hashApiKey(KEY), scopes: ['usage:write'] }]),
    });
    app = await bootstrapHttpApp(UsageIngestModule.forRoot(config), {
      service: 'usage-ingest', title: 'test', config, statusByCode: USAGE_INGEST_STATUS_BY_CODE, host: '127.0.0.1',
    });
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema?.();
  });

  it('answers every malformed request with a 4xx {code, message}, echoes nothing, stores nothing and stays healthy', async () => {
    const requests: MalformedRequest[] = [
      jsonPost('1 MB of metadata', chat('m-1', { metadata: { blob: `${ECHO_MARKER}${'x'.repeat(1_000_000)}` } })),
      jsonPost('2,000 metadata keys', chat('m-2', { metadata: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, 'v'])) })),
      jsonPost('a metadata value that is an object', chat('m-3', { metadata: { nested: { deeper: 'x' } } })),
      jsonPost('metadata null', chat('m-4', { metadata: null })),
      jsonPost('metadata an array', chat('m-5', { metadata: ['x'] })),
      jsonPost('a NUL byte in the model', chat('m-6', { model: `gpt-4o\u0000${ECHO_MARKER}` })),
      jsonPost('a NUL byte in a metadata value', chat('m-7', { metadata: { note: `a\u0000${ECHO_MARKER}` } })),
      jsonPost('a lone surrogate in a metadata key', chat('m-8', { metadata: { [`\ud800${ECHO_MARKER}`]: 'x' } })),
      jsonPost('holdId null', chat('m-9', { holdId: null })),
      jsonPost('council responses null', chat('m-10', { feature: 'council', model: undefined, responses: null })),
      jsonPost('a council response that is null', chat('m-11', { feature: 'council', model: undefined, responses: [null] })),
      jsonPost('a batch with an unknown top-level property', { events: [chat('m-12')], unexpected: true }),
      jsonPost('a batch whose events is null', { events: null }),
      jsonPost('a batch whose events is an object', { events: { 0: chat('m-13') } }),
      jsonPost('a batch holding null', { events: [null] }),
      jsonPost('a batch of one event with 1 MB of metadata', { events: [chat('m-14', { metadata: { blob: 'x'.repeat(1_000_000) } })] }),
      ...rawBodyCases('POST', '/v1/usage-events'),
      ...headerCases('POST', '/v1/usage-events'),
      ...urlCases('POST', '/v1/usage-events/{}', true),
      ...urlCases('GET', '/health?probe={}', false),
      ...mutatedBodyCases(
        { method: 'POST', path: '/v1/usage-events', valid: chat('fz-1'), strictFields: ['id', 'accountId', 'occurredAt', 'feature', 'model', 'inputTokens', 'outputTokens'], optionalFields: ['metadata', 'holdId'] },
        { seed: SEED, runs: 150 },
      ),
      ...mutatedBodyCases(
        { method: 'POST', path: '/v1/usage-events', valid: { events: [chat('fz-2'), chat('fz-3')] }, strictFields: ['events', 'events.0.id', 'events.1.occurredAt', 'events.1.feature'], optionalFields: ['events.0.metadata'] },
        { seed: SEED + 1, runs: 100 },
      ),
    ];
    const before = await stored();
    const outcomes = await sendAll(base, KEY, requests);
    expect(outcomes.map(problemWith).filter(Boolean)).toEqual([]);
    expect(await stored()).toEqual(before);
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });
});
