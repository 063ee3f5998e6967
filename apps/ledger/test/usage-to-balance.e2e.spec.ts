import type { INestApplication } from '@nestjs/common';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { Pool } from 'pg';
import { TallyClient, type components } from '@tally/client';
import { startServiceProcess, testDatabaseUrl, testKafkaBrokers, waitFor, type ServiceProcess } from '@tally/testing';
import { API_KEY, collect, createTestSchema, createTopics, cycleStartedMessage, json, ledgerTestSettings, startLedger, waitForAvailable } from './ledger.harness';

/**
 * Issue 3, end to end on the real broker and database: HTTP ingest → usage.events.v1 → ledger (event store)
 * → relay → ledger.events.v1 → projection → balance read model → HTTP.
 */
describe('usage to balance, end to end', () => {
  const { env, topics } = ledgerTestSettings();
  const drops: (() => Promise<void>)[] = [];
  let ledger: INestApplication;
  let ingest: ServiceProcess;
  let api: ReturnType<typeof json>;
  let producer: Producer;
  let pool: Pool;
  let schema: string;
  const now = new Date().toISOString();

  type UsageEventRequest = components['schemas']['UsageEventRequest'];
  let tally: TallyClient;

  const usage = (id: string, accountId: string, fields: Omit<UsageEventRequest, 'id' | 'accountId' | 'occurredAt'>): UsageEventRequest => ({ id, accountId, occurredAt: now, ...fields });
  // Through the typed client's generated call (no retries: the test reads each answer's exact status and body).
  const report = async (event: UsageEventRequest) => {
    const { data, error, response } = await tally.api.usageIngest.POST('/v1/usage-events', { body: event });
    return { status: response.status, body: (data ?? error) as any };
  };
  const envelope = (id: string, accountId: string, data: object) =>
    JSON.stringify({ id, type: 'UsageRecorded', version: 1, accountId, occurredAt: now, data });
  const balanceOf = (accountId: string) => api.get(`/v1/accounts/${accountId}/balance`);
  const waitForBalance = (accountId: string, available: string) => waitForAvailable(api, accountId, available);
  const usageDebits = async (accountId: string) =>
    (await pool.query(`select data from "${schema}".events where stream_id = $1 and type = 'UsageDebited' order by version`, [`account-${accountId}`])).rows.map((r) => r.data);

  beforeAll(async () => {
    const ledgerSchema = await createTestSchema('ledger_e2e');
    const ingestSchema = await createTestSchema('ingest_e2e');
    drops.push(ledgerSchema.drop, ingestSchema.drop);
    schema = ledgerSchema.schema;
    await createTopics(topics);
    const started = await startLedger(env, schema);
    ledger = started.app;
    api = json(started.base);
    // usage-ingest runs as its own process, as in production.
    ingest = await startServiceProcess('usage-ingest', { ...env, DATABASE_SCHEMA: ingestSchema.schema });
    tally = new TallyClient({ apiKey: API_KEY, urls: { usageIngest: ingest.base, ledger: started.base } });
    producer = new Kafka({ clientId: 'e2e', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    pool = new Pool({ connectionString: testDatabaseUrl() });
  });

  afterAll(async () => {
    await producer?.disconnect();
    await ingest?.kill();
    await ledger?.close();
    await pool?.end();
    for (const drop of drops) await drop();
  });

  it('grants 100 credits, then a chat usage lowers the balance read model by its exact price', async () => {
    expect((await balanceOf('acct-a')).status).toBe(404);
    const grant = await api.post('/v1/accounts/acct-a/grants', { reason: 'test grant', idempotencyKey: 'welcome', amount: '100' });
    expect(grant.status).toBe(201);
    await waitForBalance('acct-a', '100');

    // gpt-4o: 1,234 in × 2.5/M + 567 out × 10/M = 0.003085 + 0.00567 = 0.008755 credits
    const accepted = await report(usage('chat-1', 'acct-a', { feature: 'chat', model: 'gpt-4o', inputTokens: 1234, outputTokens: 567 }));
    expect(accepted).toEqual({ status: 202, body: { accepted: 1, duplicates: 0, duplicateIds: [] } });
    const balance = await waitForBalance('acct-a', '99.991245');
    expect(balance).toMatchObject({ byKind: { promotional: '99.991245' }, usedThisCycle: '0.008755' });
  });

  it('charges the same usage id once, even when Kafka delivers it twice', async () => {
    const data = { feature: 'chat', model: 'gpt-4o', inputTokens: 1200, outputTokens: 300 }; // 0.006 credits
    await producer.send({ topic: env.USAGE_EVENTS_TOPIC, messages: [{ key: 'acct-a', value: envelope('chat-twice', 'acct-a', data) }] });
    await producer.send({ topic: env.USAGE_EVENTS_TOPIC, messages: [{ key: 'acct-a', value: envelope('chat-twice', 'acct-a', data) }] });
    await waitForBalance('acct-a', '99.985245');
    // A later event proves both copies were consumed; still one debit for chat-twice.
    await producer.send({ topic: env.USAGE_EVENTS_TOPIC, messages: [{ key: 'acct-a', value: envelope('chat-after', 'acct-a', data) }] });
    await waitForBalance('acct-a', '99.979245');
    expect((await usageDebits('acct-a')).filter((d) => d.usageId === 'chat-twice')).toHaveLength(1);
  });

  it('spends the allowance before purchased credits', async () => {
    await producer.send({
      topic: env.SUBSCRIPTION_EVENTS_TOPIC,
      messages: [cycleStartedMessage('acct-b', 'cycle-b-0', { periodStart: now })],
    });
    await waitForBalance('acct-b', '10');
    const purchase = await api.post('/v1/accounts/acct-b/purchases', { paymentReference: 'pay-b-1', amount: '50' });
    expect(purchase.status).toBe(201);
    await waitForBalance('acct-b', '60');
    // 2,000,000 output tokens of gpt-4o = 20 credits: 10 from the allowance, then 10 purchased.
    await report(usage('big-b', 'acct-b', { feature: 'chat', model: 'gpt-4o', inputTokens: 0, outputTokens: 2_000_000 }));
    const balance = await waitForBalance('acct-b', '40');
    expect(balance.byKind).toEqual({ allowance: '0', promotional: '0', purchased: '40' });
    const [debit] = await usageDebits('acct-b');
    expect(debit.perBucket).toEqual([
      { bucketId: 'allowance:cycle-b-0', kind: 'allowance', amount: '10' },
      { bucketId: 'purchase:pay-b-1', kind: 'purchased', amount: '10' },
    ]);
  });

  it('a new cycle expires the unused allowance and keeps purchased credits (idempotent by cycle id)', async () => {
    const cycle = (cycleId: string, start: number) => ({
      key: 'acct-r',
      value: JSON.stringify({
        id: cycleId, type: 'CycleStarted', version: 1, accountId: 'acct-r', occurredAt: now,
        data: { cycleId, planId: 'starter', periodStart: new Date(start).toISOString(), periodEnd: new Date(start + 30 * 86_400_000).toISOString(), allocation: '10', unlimited: false, thresholds: [20, 5], overdraftPolicy: 'carry' },
      }),
    });
    await producer.send({ topic: env.SUBSCRIPTION_EVENTS_TOPIC, messages: [cycle('cycle-r-0', Date.now() - 86_400_000)] });
    await waitForBalance('acct-r', '10');
    await api.post('/v1/accounts/acct-r/purchases', { paymentReference: 'pay-r', packId: 'pack-1000' });
    await waitForBalance('acct-r', '1010');
    await report(usage('use-r', 'acct-r', { feature: 'chat', model: 'gpt-4o', inputTokens: 0, outputTokens: 300_000 })); // 3 credits
    expect((await waitForBalance('acct-r', '1007')).byKind).toEqual({ allowance: '7', promotional: '0', purchased: '1000' });

    await producer.send({ topic: env.SUBSCRIPTION_EVENTS_TOPIC, messages: [cycle('cycle-r-1', Date.now()), cycle('cycle-r-1', Date.now())] });
    const reset = await waitForBalance('acct-r', '1010');
    expect(reset).toMatchObject({ byKind: { allowance: '10', promotional: '0', purchased: '1000' }, usedThisCycle: '0', cycleId: 'cycle-r-1', allocation: '10' });
    const expired = await api.get('/v1/accounts/acct-r/transactions?type=CreditsExpired');
    expect(expired.body.items).toEqual([expect.objectContaining({ amount: '-7', details: expect.objectContaining({ reason: 'cycle-reset' }) })]);
    expect((await api.get('/v1/accounts/acct-r/transactions?type=CycleStarted')).body.items).toHaveLength(2);
  });

  it('debits a council answer once, listing each model’s share', async () => {
    await api.post('/v1/accounts/acct-c/grants', { reason: 'test grant', idempotencyKey: 'c-grant', amount: '1' });
    await waitForBalance('acct-c', '1');
    // gpt-4o 100/50 = 0.00075; claude-sonnet-4 100/70 = 0.0003 + 0.00105 = 0.00135; total 0.0021
    await report(usage('council-1', 'acct-c', {
      feature: 'council',
      responses: [{ model: 'gpt-4o', inputTokens: 100, outputTokens: 50 }, { model: 'claude-sonnet-4', inputTokens: 100, outputTokens: 70 }],
    }));
    await waitForBalance('acct-c', '0.9979');
    const debits = await usageDebits('acct-c');
    expect(debits).toHaveLength(1);
    expect(debits[0]).toMatchObject({ amount: '0.0021', feature: 'council', models: ['gpt-4o', 'claude-sonnet-4'] });
    expect(debits[0].pricing.lines.map((l: { model: string; amount: string }) => [l.model, l.amount])).toEqual([
      ['gpt-4o', '0.00075'],
      ['claude-sonnet-4', '0.00135'],
    ]);
  });

  it('refuses an unknown model at ingest (400): it never reaches the ledger', async () => {
    const refused = await report(usage('unknown-model', 'acct-a', { feature: 'chat', model: 'gpt-9-imaginary', inputTokens: 1, outputTokens: 1 }));
    expect(refused.status).toBe(400);
    expect(refused.body.details[0]).toMatchObject({ field: 'model' });
    const { rows } = await pool.query(`select count(*)::int as n from "${schema}".events where data->>'usageId' = 'unknown-model'`);
    expect(rows[0].n).toBe(0);
  });

  it('dead-letters garbage produced straight to Kafka and applies the next valid event on that partition', async () => {
    const dlq = await collect(env.USAGE_DLQ_TOPIC);
    try {
      await producer.send({
        topic: env.USAGE_EVENTS_TOPIC,
        messages: [
          { key: 'acct-a', value: '{"this is": not json' },
          { key: 'acct-a', value: envelope('after-garbage', 'acct-a', { feature: 'chat', model: 'gpt-4o', inputTokens: 1200, outputTokens: 300 }) },
        ],
      });
      await waitForBalance('acct-a', '99.973245');
      const dead = await waitFor(() => dlq.messages.find((m) => m.value.includes('this is')));
      expect(dead.key).toBe('acct-a');
      expect(JSON.stringify(dead.headers)).toContain('INVALID_JSON');
    } finally {
      await dlq.stop();
    }
  });
});
