import type { INestApplication } from '@nestjs/common';
import { Kafka, logLevel } from 'kafkajs';
import { bootstrapHttpApp, hashApiKey, loadConfig } from '@tally/shared';
import { createTestSchema, TEST_RATE_LIMITS, freePort, testDatabaseUrl, testKafkaBrokers, uniqueSuffix, waitFor } from '@tally/testing';
import { UsageIngestConfig } from '../src/config/usage-ingest.config';
import { USAGE_INGEST_STATUS_BY_CODE } from '../src/usage-ingest.errors';
import { UsageIngestModule } from '../src/usage-ingest.module';

const WRITER = 'ingest-unwritable-writer';

/**
 * A cluster that answers metadata but takes no writes: here a topic whose records may be at most 64 bytes (every send
 * refused), as a cluster with in-sync replicas missing or a principal without WRITE would refuse them. The topic exists and the broker answers, so the metadata check stayed green while every request failed: readiness
 * must say the service cannot produce, and be ready again once it can. Real broker, real PostgreSQL, real HTTP.
 */
describe('usage-ingest on a cluster that takes no writes', () => {
  let app: INestApplication | undefined;
  let base: string;
  let dropSchema: (() => Promise<void>) | undefined;
  const topic = `usage.events.unwritable.${uniqueSuffix()}`;
  const admin = new Kafka({ clientId: 'ingest-unwritable-admin', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }).admin();

  beforeAll(async () => {
    const { schema, drop } = await createTestSchema('ingest_unwritable');
    dropSchema = drop;
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: '64' }] }], waitForLeaders: true });
    const port = await freePort();
    const config = loadConfig(UsageIngestConfig, {
      ...TEST_RATE_LIMITS,
      PORT: String(port), DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema, KAFKA_BROKERS: testKafkaBrokers().join(','),
      USAGE_EVENTS_TOPIC: topic, LOG_LEVEL: 'error',
      API_KEYS: JSON.stringify([{ name: 'writer', sha256: hashApiKey(WRITER), scopes: ['usage:write'] }]),
    });
    app = await bootstrapHttpApp(UsageIngestModule.forRoot(config), {
      service: 'usage-ingest', title: 'test', config, statusByCode: USAGE_INGEST_STATUS_BY_CODE, host: '127.0.0.1',
    });
    base = `http://127.0.0.1:${port}`;
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
    await dropSchema?.();
  });

  const post = (id: string, occurredAt = new Date().toISOString()) =>
    fetch(`${base}/v1/usage-events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${WRITER}` },
      body: JSON.stringify({ id, accountId: 'acct-unwritable', occurredAt, feature: 'chat', model: 'gpt-4o', inputTokens: 10, outputTokens: 5 }),
    });
  const takesWrites = (yes: boolean) =>
    admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: topic, configEntries: [{ name: 'max.message.bytes', value: yes ? '1048588' : '64' }] }] });
  const ready = async () => {
    const response = await fetch(`${base}/health/ready`);
    return { status: response.status, body: await response.text() };
  };

  it('is not ready, naming the failing sends, while every usage is refused (never shut out for good); ready again once the topic takes writes', async () => {
    expect((await ready()).status).toBe(200);
    let n = 0;
    const notReady = await waitFor(async () => {
      expect((await post(`u-${n++}`)).status).toBe(503); // KAFKA_UNAVAILABLE, retry later
      const answer = await ready();
      return answer.status === 503 ? answer : undefined;
    }, 60_000, 1_000);
    expect(notReady.body).toContain('producing');
    expect(notReady.body).toMatch(/Kafka sends failing: \d+ in a row/);

    // Out of service, a pod gets no requests and sends nothing: it must come back by itself, not stay out for good.
    await waitFor(async () => (await ready()).status === 200, 60_000, 1_000);
    expect((await post(`u-${n++}`)).status).toBe(503); // its next request still fails, and it is out again at once
    expect((await ready()).status).toBe(503);

    await takesWrites(true);
    await waitFor(async () => (await post(`u-${n++}`)).status === 202, 30_000, 500);
    expect((await ready()).status).toBe(200);
  }, 180_000);

  // A product rebuilding the body on retry (occurredAt = now) was told 409 "already accepted with different content"
  // for a usage that never reached Kafka: it stopped, and the usage was never charged.
  it('answers a retry with other content of a usage whose hand-off failed 409 USAGE_PENDING naming it, not "already accepted"; the first content then goes through', async () => {
    const first = '2026-12-07T10:00:00.000Z';
    await takesWrites(false);
    let attempt = 0;
    let id = '';
    try {
      // A fresh id each time until one is refused: one taken before the broker applied the limit is simply accepted.
      await waitFor(async () => (await post((id = `pending-${attempt++}`), first)).status === 503, 30_000, 500);
      const rebuilt = await post(id, '2026-12-07T10:00:05.000Z');
      expect(rebuilt.status).toBe(409);
      expect(await rebuilt.json()).toMatchObject({ code: 'USAGE_PENDING', details: { pendingIds: [id] }, message: expect.stringContaining('same content') });
    } finally {
      await takesWrites(true);
    }
    await waitFor(async () => (await post(id, first)).status === 202, 30_000, 500);
  }, 120_000);
});
