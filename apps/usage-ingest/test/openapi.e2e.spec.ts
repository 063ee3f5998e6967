import type { INestApplication } from '@nestjs/common';
import { Kafka, logLevel } from 'kafkajs';
import { ensureTopics } from '@tally/kafka';
import { AUTH_STATUS_BY_CODE, bootstrapHttpApp, hashApiKey, loadConfig } from '@tally/shared';
import { OpenApiContract, catalogueProblems, conformanceProblems, createTestSchema, TEST_RATE_LIMITS, freePort, testDatabaseUrl, testKafkaBrokers, uniqueSuffix } from '@tally/testing';
import { UsageIngestConfig } from '../src/config/usage-ingest.config';
import { USAGE_INGEST_STATUS_BY_CODE } from '../src/usage-ingest.errors';
import { UsageIngestModule } from '../src/usage-ingest.module';

const KEY = 'openapi-writer-key';

/** The real service answers only what its OpenAPI document (served at /docs-json) describes. */
describe('usage-ingest and its OpenAPI document', () => {
  let app: INestApplication;
  let base: string;
  let dropSchema: () => Promise<void>;
  let contract: OpenApiContract;
  const topic = `usage.events.openapi.${uniqueSuffix()}`;

  beforeAll(async () => {
    const created = await createTestSchema('ingest_openapi');
    dropSchema = created.drop;
    await ensureTopics(new Kafka({ clientId: 'ingest-openapi', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }), [topic], 3);
    const port = await freePort();
    const config = loadConfig(UsageIngestConfig, {
      ...TEST_RATE_LIMITS,
      PORT: String(port), DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: created.schema, KAFKA_BROKERS: testKafkaBrokers().join(','),
      USAGE_EVENTS_TOPIC: topic, LOG_LEVEL: 'silent',
      API_KEYS: JSON.stringify([{ name: 'writer', sha256: hashApiKey(KEY), scopes: ['usage:write'] }]),
    });
    app = await bootstrapHttpApp(UsageIngestModule.forRoot(config), {
      service: 'usage-ingest', title: 'test', config, statusByCode: USAGE_INGEST_STATUS_BY_CODE, host: '127.0.0.1',
    });
    base = `http://127.0.0.1:${port}`;
    contract = await OpenApiContract.served(base);
  });

  afterAll(async () => {
    await app?.close();
    await dropSchema?.();
  });

  it('answers valid and invalid requests to every operation only as the document describes', async () => {
    // One instant for every event: the same id sent twice must be the same content, or it is a conflict (409).
    const occurredAt = new Date().toISOString();
    const chat = (id: string) => ({
      id, accountId: 'acct-openapi', occurredAt, feature: 'chat', model: 'gpt-4o', inputTokens: 10, outputTokens: 5, metadata: { source: 'chat-ui' },
    });
    const problems = await conformanceProblems(contract, base, KEY, {
      recordUsage: [
        { path: '/v1/usage-events', body: chat('oa-1') },
        { path: '/v1/usage-events', body: chat('oa-1') },
        { path: '/v1/usage-events', body: { events: [chat('oa-2'), chat('oa-3'), { ...chat('oa-4'), feature: 'image', model: 'gpt-image-1', images: 1, resolution: '1024x1024', inputTokens: undefined, outputTokens: undefined }] } },
      ],
    });
    expect(problems).toEqual([]);
  });

  it("documents each of the service's error codes under the status its error filter answers it with", () => {
    expect(catalogueProblems(contract, { ...AUTH_STATUS_BY_CODE, ...USAGE_INGEST_STATUS_BY_CODE })).toEqual([]);
  });
});
