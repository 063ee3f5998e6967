import { ensureTopics, createKafkaClient } from '@tally/kafka';
import { createTestSchema, ledgerTestEnv, startServiceProcess, testKafkaBrokers, uniqueSuffix, type ServiceProcess } from '@tally/testing';
import { logLevel } from 'kafkajs';
import { API_KEY } from './chaos.harness';
import { WorkloadClient, type WorkloadTarget } from './workload.client';
import type { Step } from './workload.fixtures';

/**
 * The fault run's client against a real ledger (a process of its own on the test broker and database). An account
 * is opened by whatever reaches the ledger first; usage reported over HTTP or Kafka opens it asynchronously, so an
 * authorization sent right after may find no account yet (seed 2140483763: `authorize … 404 ACCOUNT_NOT_FOUND`,
 * counted as a refusal the workload did not expect, and the run failed).
 */
describe('the fault run\'s workload client against a real ledger', () => {
  const { env, topics } = ledgerTestEnv([{ name: 'chaos', key: API_KEY, scopes: ['usage:write', 'accounts:read', 'admin'] }]);
  let ledger: ServiceProcess;
  let drop: () => Promise<void>;
  let target: WorkloadTarget;

  beforeAll(async () => {
    const kafkaClient = (clientId: string) => createKafkaClient({ clientId, brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING });
    await ensureTopics(kafkaClient('workload-client-e2e'), topics, 3);
    const schema = await createTestSchema('chaos_client');
    drop = schema.drop;
    ledger = await startServiceProcess('ledger', { ...env, DATABASE_SCHEMA: schema.schema }, 120_000);
    target = { kafkaClient, service: () => ({ base: ledger.base }), receiver: { url: 'http://127.0.0.1:9' } };
  }, 150_000);

  afterAll(async () => {
    await ledger?.kill();
    await drop?.();
  });

  it('sends an authorization or a hold of an account the ledger has not opened yet again until it is, instead of counting it refused', async () => {
    const client = new WorkloadClient(target, { accounts: [], setup: [], steps: [], usageEvents: 0, poisonKeys: [] });
    const accountId = `fresh-${uniqueSuffix()}`;
    const authorize: Step = { kind: 'authorize', key: `authz-${accountId}`, accountId, amount: '1' };
    const hold: Step = {
      kind: 'hold', key: `hold-${accountId}`, accountId, amount: '1', ttlSeconds: 120, then: 'release',
      settleWith: { id: `u-${accountId}`, accountId, occurredAt: '', feature: 'chat', model: 'gpt-4o', inputTokens: 1, outputTokens: 1 },
    };
    try {
      expect([await client.send(authorize), await client.send(hold)]).toEqual([404, 404]);
      expect({ refusals: client.refusals, unsure: [...client.acks.unsure.keys()] }).toEqual({ refusals: [], unsure: [authorize.key, hold.key] });

      // The account opens (a grant answered by the ledger); the resends are answered as any other request.
      expect(await client.send({ kind: 'grant', key: `grant-${accountId}`, accountId, amount: '5' })).toBe(200);
      await client.resendAllUnsure(30_000);
      expect({ refusals: client.refusals, unsure: client.acks.unsure.size, holds: client.holds })
        .toEqual({ refusals: [], unsure: 0, holds: { placed: 1, refused: 0, unlimited: 0 } });
      expect([...client.acks.acked.keys()]).toEqual(expect.arrayContaining([authorize.key, hold.key, `release-${hold.key}`]));
    } finally {
      await client.close();
    }
  });
});
