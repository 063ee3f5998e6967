import type { INestApplication } from '@nestjs/common';
import { createTestSchema, createTopics, json, ledgerTestSettings, startLedger } from './ledger.harness';

/**
 * Two requests with one idempotency key and different content, at the same moment: one is applied, the other is
 * IDEMPOTENCY_CONFLICT, and the instance's state afterwards is the stream's. The race: both decide from the same
 * state; the loser's append finds the winner's events under the same (key-derived) ids where its own would go,
 * which the event store reports as a duplicate of an earlier attempt of the same decision.
 */
describe('racing requests under one idempotency key (real HTTP and PostgreSQL)', () => {
  const { env, topics } = ledgerTestSettings();
  let app: INestApplication;
  let api: ReturnType<typeof json>;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    let schema: string;
    ({ schema, drop } = await createTestSchema('ledger_racing_keys'));
    await createTopics(topics);
    let base: string;
    ({ app, base } = await startLedger({ ...env, LOG_LEVEL: 'silent' }, schema));
    api = json(base);
  });

  afterAll(async () => {
    await app?.close();
    await drop?.();
  });

  it('grants of 10 and of 1000 under one key: one 201, one 409, and the next authorization sees only the one applied', async () => {
    const pairs = Array.from({ length: 20 }, (_, index) => `acct-race-${index}`);
    const outcomes = await Promise.all(pairs.map(async (accountId) => {
      const [small, large] = await Promise.all([
        api.post(`/v1/accounts/${accountId}/grants`, { reason: 'test grant', idempotencyKey: 'same-key', amount: '10' }),
        api.post(`/v1/accounts/${accountId}/grants`, { reason: 'test grant', idempotencyKey: 'same-key', amount: '1000' }),
      ]);
      // What the account holds: 11 credits can be authorized only if the 1000 was applied.
      const probe = await api.post(`/v1/accounts/${accountId}/authorizations`, { amount: '11' });
      return { accountId, probe: probe.body, statuses: [small.status, large.status], codes: [small.body.code, large.body.code], applied: small.status === 201 ? '10' : '1000', allowed: probe.body.allowed };
    }));
    for (const outcome of outcomes) {
      expect({ accountId: outcome.accountId, statuses: [...outcome.statuses].sort() }).toEqual({ accountId: outcome.accountId, statuses: [201, 409] });
      expect(outcome.codes).toContain('IDEMPOTENCY_CONFLICT');
      const holds = outcome.applied === '1000' ? { allowed: true } : { code: 'INSUFFICIENT_CREDITS', available: '10' };
      expect({ accountId: outcome.accountId, probe: outcome.probe }).toMatchObject({ accountId: outcome.accountId, probe: holds });
    }
  });
});
