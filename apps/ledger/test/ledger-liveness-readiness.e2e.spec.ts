import { Kafka, logLevel } from 'kafkajs';
import { Pool } from 'pg';
import { startServiceProcess, testDatabaseUrl, testKafkaBrokers, waitFor, type ServiceProcess } from '@tally/testing';
import { createTestSchema, createTopics, json, ledgerTestSettings } from './ledger.harness';

const kafka = new Kafka({ clientId: 'readiness-test', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING });

async function groupMembers(groupId: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    return groups[0].state === 'Stable' ? groups[0].members.length : 0;
  } finally {
    await admin.disconnect();
  }
}

const get = async (base: string, path: string) => {
  const response = await fetch(`${base}${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, any> };
};

describe('ledger HTTP after a kill -9 restart', () => {
  const { env, topics } = ledgerTestSettings();
  let schema: string;
  let drop: () => Promise<void>;
  let ledger: ServiceProcess | undefined;

  beforeAll(async () => {
    ({ schema, drop } = await createTestSchema('ledger_live'));
    await createTopics(topics);
  });

  afterAll(async () => {
    await ledger?.kill('SIGKILL');
    await drop();
  });

  it('listens and answers authorizations within seconds while the dead consumer is still a member of its group', async () => {
    const ledgerEnv = { ...env, DATABASE_SCHEMA: schema };
    ledger = await startServiceProcess('ledger', ledgerEnv, 90_000);
    const api = json(ledger.base);
    expect((await api.post('/v1/accounts/fast-restart/grants', { reason: 'test grant', idempotencyKey: 'g', amount: '10' })).status).toBe(201);
    await waitFor(async () => (await groupMembers(env.CONSUMER_GROUP)) === 1, 60_000, 200);

    await ledger.kill('SIGKILL');
    // The premise: the killed member stays registered until its session (30 s) times out.
    expect(await groupMembers(env.CONSUMER_GROUP)).toBe(1);

    const restartedAt = Date.now();
    ledger = await startServiceProcess('ledger', ledgerEnv, 60_000, '/health/live');
    const restarted = ledger;
    const authorization = await waitFor(async () => {
      const response = await json(restarted.base).post('/v1/accounts/fast-restart/authorizations', { amount: '2.5' });
      return response.status === 200 ? response.body : undefined;
    }, 15_000, 100);
    const answeredAfterMs = Date.now() - restartedAt;
    expect(authorization).toMatchObject({ allowed: true, available: '10' });
    // Process start (ts-node) included; before, the listener waited for the group to drop the dead member (25-52 s).
    expect(answeredAfterMs).toBeLessThan(15_000);
  }, 180_000);
});

describe('ledger readiness while a consumer keeps failing on one message', () => {
  const { env, topics } = ledgerTestSettings();
  let schema: string;
  let drop: () => Promise<void>;
  let pool: Pool;
  let ledger: ServiceProcess | undefined;

  beforeAll(async () => {
    ({ schema, drop } = await createTestSchema('ledger_ready'));
    await createTopics(topics);
    pool = new Pool({ connectionString: testDatabaseUrl() });
  });

  afterAll(async () => {
    await ledger?.kill('SIGKILL');
    await pool.end();
    await drop();
  });

  it('reports not ready naming the stalled projection partition and offset, stays live, and is ready again once the write succeeds', async () => {
    ledger = await startServiceProcess('ledger', { ...env, DATABASE_SCHEMA: schema }, 90_000);
    const base = ledger.base;
    const api = json(base);
    expect((await get(base, '/health/ready')).status).toBe(200);

    // A real, repeatable failure of the projection's write: the test's own schema refuses this account's balance row.
    await pool.query(`CREATE FUNCTION "${schema}".refuse_balance() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'test trigger refuses the balance of %', NEW.account_id; END $$`);
    await pool.query(`CREATE TRIGGER refuse_balance BEFORE INSERT OR UPDATE ON "${schema}".balances
      FOR EACH ROW WHEN (NEW.account_id = 'stalled-account') EXECUTE FUNCTION "${schema}".refuse_balance()`);
    expect((await api.post('/v1/accounts/stalled-account/grants', { reason: 'test grant', idempotencyKey: 'stall', amount: '5' })).status).toBe(201);

    const notReady = await waitFor(async () => {
      const response = await get(base, '/health/ready');
      return response.status === 503 ? response.body : undefined;
    }, 60_000, 200);
    const projection = notReady.error['projection-consumer'];
    expect(projection.status).toBe('down');
    expect(projection.message).toContain(`consumer group ${env.PROJECTION_GROUP} stalled on ${env.LEDGER_EVENTS_TOPIC}[`);
    expect(projection.groupId).toBe(env.PROJECTION_GROUP);
    expect(projection.stalled[0]).toMatchObject({
      where: { topic: env.LEDGER_EVENTS_TOPIC, partition: expect.any(Number), offset: expect.any(String) },
      lastError: expect.stringContaining('test trigger refuses the balance of stalled-account'),
    });
    expect(projection.stalled[0].attempts).toBeGreaterThanOrEqual(5);
    // The other checks still pass: only the stalled consumer is named.
    expect(notReady.info).toMatchObject({ postgres: { status: 'up' }, kafka: { status: 'up' }, 'usage-consumer': { status: 'up' }, relay: { status: 'up' } });
    expect((await get(base, '/health')).status).toBe(503); // the old path answers as readiness
    expect(await get(base, '/health/live')).toEqual({ status: 200, body: { status: 'ok' } });

    // Every failed attempt is logged with its cause and where it is.
    const { partition, offset } = projection.stalled[0].where;
    const attempts = ledger.output().split('\n').filter((line) => line.includes('batch failed: rolled back, retrying') && line.includes(env.LEDGER_EVENTS_TOPIC));
    expect(attempts.length).toBeGreaterThanOrEqual(4);
    expect(attempts[attempts.length - 1]).toContain(`"partition":${partition}`);
    expect(attempts[attempts.length - 1]).toContain(`"offset":"${offset}"`);
    expect(attempts[attempts.length - 1]).toContain('test trigger refuses the balance of stalled-account');

    await pool.query(`DROP TRIGGER refuse_balance ON "${schema}".balances`);
    await waitFor(async () => (await get(base, '/health/ready')).status === 200, 90_000, 200);
    const balance = await waitFor(async () => {
      const response = await api.get('/v1/accounts/stalled-account/balance');
      return response.status === 200 && response.body.available === '5' ? response.body : undefined;
    }, 30_000, 200);
    expect(balance.available).toBe('5');
    expect((await get(base, '/health/live')).status).toBe(200);
  }, 240_000);
});

describe('ledger readiness when a topic it reads is deleted under it', () => {
  const { env, topics } = ledgerTestSettings();
  let drop: () => Promise<void>;
  let ledger: ServiceProcess | undefined;

  afterAll(async () => {
    await ledger?.kill('SIGKILL');
    await drop?.();
  });

  // kafkajs keeps asking for a deleted topic without a crash or an error the consumer sees: nothing is consumed and,
  // before, /health/ready kept answering 200.
  it('is not ready, naming the topic, and ready again once it is back', async () => {
    let schema: string;
    ({ schema, drop } = await createTestSchema('ledger_topic_gone'));
    await createTopics(topics);
    ledger = await startServiceProcess('ledger', { ...env, DATABASE_SCHEMA: schema }, 90_000);
    const base = ledger.base;
    await waitFor(async () => (await get(base, '/health/ready')).status === 200, 60_000, 200);

    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.deleteTopics({ topics: [env.SUBSCRIPTION_EVENTS_TOPIC] });
    } finally {
      await admin.disconnect();
    }
    const notReady = await waitFor(async () => {
      const response = await get(base, '/health/ready');
      return response.status === 503 ? response.body : undefined;
    }, 30_000, 200);
    expect(notReady.error.kafka).toMatchObject({ status: 'down', missingTopics: [env.SUBSCRIPTION_EVENTS_TOPIC] });
    expect(notReady.error.kafka.message).toContain(`topic ${env.SUBSCRIPTION_EVENTS_TOPIC} does not exist`);

    await createTopics([env.SUBSCRIPTION_EVENTS_TOPIC]);
    await waitFor(async () => (await get(base, '/health/ready')).status === 200, 60_000, 200);
  }, 180_000);
});
