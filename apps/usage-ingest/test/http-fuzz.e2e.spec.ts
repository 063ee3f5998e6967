import type { INestApplication } from '@nestjs/common';
import { Kafka, logLevel } from 'kafkajs';
import { Client } from 'pg';
import { ensureTopics } from '@tally/kafka';
import { bootstrapHttpApp, hashApiKey, loadConfig } from '@tally/shared';
import { OpenApiContract, createTestSchema, TEST_RATE_LIMITS, freePort, fuzzOperations, testDatabaseUrl, testKafkaBrokers, uniqueSuffix } from '@tally/testing';
import { UsageIngestConfig } from '../src/config/usage-ingest.config';
import { USAGE_INGEST_STATUS_BY_CODE } from '../src/usage-ingest.errors';
import { UsageIngestModule } from '../src/usage-ingest.module';

const KEY = 'fuzz-writer-key';

/**
 * The HTTP fuzzer against the real service: requests generated from its OpenAPI document, FUZZ_RUNS per operation,
 * seed printed on failure (FC_SEED replays it). No 5xx, every answer as documented, and for a refused request no
 * accepted-usage row and no message on the topic.
 */
describe('usage-ingest under requests generated from its OpenAPI document', () => {
  let app: INestApplication;
  let base: string;
  let schema: string;
  let dropSchema: () => Promise<void>;
  let db: Client;
  const topic = `usage.events.fuzz.${uniqueSuffix()}`;
  const kafka = new Kafka({ clientId: 'ingest-fuzz', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();

  beforeAll(async () => {
    ({ schema, drop: dropSchema } = await createTestSchema('ingest_fuzz'));
    await ensureTopics(kafka, [topic], 3);
    await admin.connect();
    db = new Client({ connectionString: testDatabaseUrl() });
    await db.connect();
    const port = await freePort();
    const config = loadConfig(UsageIngestConfig, {
      ...TEST_RATE_LIMITS,
      PORT: String(port), DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema, KAFKA_BROKERS: testKafkaBrokers().join(','),
      USAGE_EVENTS_TOPIC: topic, LOG_LEVEL: 'silent',
      API_KEYS: JSON.stringify([{ name: 'writer', sha256: hashApiKey(KEY), scopes: ['usage:write'] }]),
    });
    app = await bootstrapHttpApp(UsageIngestModule.forRoot(config), {
      service: 'usage-ingest', title: 'test', config, statusByCode: USAGE_INGEST_STATUS_BY_CODE, host: '127.0.0.1', bodyLimit: config.BODY_LIMIT,
    });
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await app?.close();
    await admin.disconnect();
    await db?.end();
    await dropSchema?.();
  });

  it('answers every generated request as its document says, never a 5xx, and accepts nothing it refuses', async () => {
    const stored = async () => {
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM "${schema}".accepted_usage`);
      const offsets = await admin.fetchTopicOffsets(topic);
      return { acceptedRows: rows[0].n as number, messages: offsets.reduce((sum, o) => sum + Number(o.high), 0) };
    };
    const report = await fuzzOperations({ contract: await OpenApiContract.served(base), baseUrl: base, apiKey: KEY, bodyLimit: 2 * 1024 * 1024, stored });
    if (process.env.FUZZ_REPORT) console.log(JSON.stringify(report));
    expect(report.requests).toBeGreaterThan(0);
  }, 600_000);
});
