import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { DeadLetterHeaders } from '@tally/kafka';
import { hashApiKey } from '@tally/shared';
import { createTestSchema, startServiceProcess, testKafkaBrokers, uniqueSuffix, waitFor, type ServiceProcess } from '@tally/testing';
import { collect, createTopics, ledgerTestSettings } from './ledger.harness';

const KEYS = {
  ops: 'scopes-ops-key',
  usage: 'scopes-usage-only-key',
  support: 'scopes-support-key',
  legacy: 'scopes-legacy-key',
  chat: 'scopes-chat-product-key',
  karma: 'scopes-karma-product-key',
  both: 'scopes-both-products-key',
};

/**
 * Issue 18, items 1 and 2, on the real ledger and usage-ingest processes (real Kafka and PostgreSQL): scopes that
 * match jobs (a usage-only key cannot mint credits nor authorize; a grants key cannot refund; the legacy
 * accounts:write still works, with a warning at boot), and two products sharing one Tally (chat-… and karma-…
 * accounts): a product's key cannot read, charge, grant or mint a portal token for the other product's accounts
 * over HTTP, and a message on a product's own usage topic for the other product's account is dead-lettered while
 * one for its own account is applied.
 */
describe('scopes and account namespaces', () => {
  const { id, env, topics } = ledgerTestSettings();
  const chatTopic = `t.${id}.usage.events.chat.v1`;
  const run = uniqueSuffix();
  const CHAT = `chat-${run}`;
  const KARMA = `karma-${run}`;
  let ledger: ServiceProcess;
  let ingest: ServiceProcess;
  let producer: Producer;
  const drops: (() => Promise<void>)[] = [];

  const call = async (base: string, method: string, path: string, key: string, body?: object) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };
  const ledgerCall = (method: string, path: string, key: string, body?: object) => call(ledger.base, method, path, key, body);
  const balance = (accountId: string) => ledgerCall('GET', `/v1/accounts/${accountId}/balance`, KEYS.ops);
  const grant = (accountId: string, key: string, idempotencyKey = `g-${uniqueSuffix()}`) =>
    ledgerCall('POST', `/v1/accounts/${accountId}/grants`, key, { idempotencyKey, amount: '10', reason: 'welcome credits' });
  const usage = (accountId: string, usageId = `u-${uniqueSuffix()}`) => ({
    id: usageId, accountId, occurredAt: new Date().toISOString(), feature: 'chat', model: 'gpt-4o', inputTokens: 0, outputTokens: 100_000,
  });
  const forbidden = (requiredScope: string) => ({ status: 403, body: expect.objectContaining({ code: 'FORBIDDEN', details: { requiredScope } }) });
  const outside = (accountId: string) => ({ status: 403, body: { code: 'ACCOUNT_OUTSIDE_NAMESPACE', message: expect.any(String), details: { accountId } } });

  beforeAll(async () => {
    await createTopics([...topics, chatTopic]);
    const [ledgerSchema, ingestSchema] = await Promise.all([createTestSchema('ledger_scopes'), createTestSchema('ingest_scopes')]);
    drops.push(ledgerSchema.drop, ingestSchema.drop);
    const product = ['usage:write', 'accounts:read', 'holds:write', 'grants:write', 'purchases:write', 'portal:mint'];
    const common = {
      ...env,
      API_KEYS: JSON.stringify([
        { name: 'ops', sha256: hashApiKey(KEYS.ops), scopes: ['admin'] },
        { name: 'usage-reporter', sha256: hashApiKey(KEYS.usage), scopes: ['usage:write'] },
        { name: 'support-tool', sha256: hashApiKey(KEYS.support), scopes: ['grants:write', 'accounts:read'] },
        { name: 'legacy-backend', sha256: hashApiKey(KEYS.legacy), scopes: ['accounts:write'] },
        { name: 'chat-product', sha256: hashApiKey(KEYS.chat), scopes: product, namespaces: ['chat-'] },
        { name: 'karma-product', sha256: hashApiKey(KEYS.karma), scopes: product, namespaces: ['karma-'] },
        { name: 'one-currency', sha256: hashApiKey(KEYS.both), scopes: ['accounts:read'], namespaces: ['chat-', 'karma-'] },
      ]),
      USAGE_TOPIC_NAMESPACES: `${chatTopic}=chat-`,
    };
    [ledger, ingest] = await Promise.all([
      startServiceProcess('ledger', { ...common, DATABASE_SCHEMA: ledgerSchema.schema }, 120_000),
      startServiceProcess('usage-ingest', { ...common, DATABASE_SCHEMA: ingestSchema.schema }, 120_000),
    ]);
    producer = new Kafka({ clientId: 'scopes-e2e', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    for (const accountId of [CHAT, KARMA]) expect((await grant(accountId, KEYS.ops, 'welcome')).status).toBe(201);
    for (const accountId of [CHAT, KARMA]) await waitFor(async () => (await balance(accountId)).body.available === '10', 30_000);
  }, 180_000);

  afterAll(async () => {
    await producer?.disconnect();
    for (const service of [ledger, ingest]) await service?.kill();
    for (const drop of drops) await drop();
  });

  describe('scopes that match jobs', () => {
    it('a usage-only key reports usage but cannot mint credits (grant, purchase) nor authorize or release a hold', async () => {
      expect(await grant(CHAT, KEYS.usage)).toEqual(forbidden('grants:write'));
      expect(await ledgerCall('POST', `/v1/accounts/${CHAT}/purchases`, KEYS.usage, { paymentReference: 'pay-usage', amount: '5' })).toEqual(forbidden('purchases:write'));
      expect(await ledgerCall('POST', `/v1/accounts/${CHAT}/authorizations`, KEYS.usage, { amount: '1' })).toEqual(forbidden('holds:write'));
      expect(await ledgerCall('DELETE', `/v1/accounts/${CHAT}/holds/h-1`, KEYS.usage)).toEqual(forbidden('holds:write'));
      expect(await ledgerCall('GET', `/v1/accounts/${CHAT}/balance`, KEYS.usage)).toEqual(forbidden('accounts:read'));
      expect(await ledgerCall('POST', `/v1/accounts/${CHAT}/portal-tokens`, KEYS.usage, {})).toEqual(forbidden('portal:mint'));
      expect((await call(ingest.base, 'POST', '/v1/usage-events', KEYS.usage, usage(`other-${run}`))).status).toBe(202);
      expect((await balance(CHAT)).body.available).toBe('10');
    });

    it('a grants:write key grants promotional credits but cannot refund or void (corrections:write) nor purchase', async () => {
      expect((await grant(CHAT, KEYS.support, 'support-1')).status).toBe(201);
      const refund = { idempotencyKey: 'r-1', reason: 'wrong charge' };
      expect(await ledgerCall('POST', `/v1/accounts/${CHAT}/usage/u-any/refunds`, KEYS.support, refund)).toEqual(forbidden('corrections:write'));
      expect(await ledgerCall('POST', `/v1/accounts/${CHAT}/grants/grant:support-1/void`, KEYS.support, refund)).toEqual(forbidden('corrections:write'));
      expect(await ledgerCall('POST', `/v1/accounts/${CHAT}/purchases`, KEYS.support, { paymentReference: 'pay-support', amount: '5' })).toEqual(forbidden('purchases:write'));
    });

    it('the legacy accounts:write key still grants, purchases, authorizes and corrects, and is named in a deprecation warning at boot', async () => {
      const account = `legacy-${run}`;
      expect((await grant(account, KEYS.legacy, 'legacy-1')).status).toBe(201);
      expect((await ledgerCall('POST', `/v1/accounts/${account}/purchases`, KEYS.legacy, { paymentReference: 'pay-legacy', amount: '5' })).status).toBe(201);
      await waitFor(async () => (await balance(account)).body.available === '15', 30_000);
      expect((await ledgerCall('POST', `/v1/accounts/${account}/authorizations`, KEYS.legacy, { amount: '1', hold: { holdId: 'h-legacy', ttlSeconds: 60 } })).status).toBe(200);
      expect((await ledgerCall('DELETE', `/v1/accounts/${account}/holds/h-legacy`, KEYS.legacy)).status).toBe(200);
      // Past the guard: the domain answers (no such usage), not 403.
      expect(await ledgerCall('POST', `/v1/accounts/${account}/usage/u-none/refunds`, KEYS.legacy, { idempotencyKey: 'r-legacy', reason: 'test' })).toMatchObject({
        status: 404, body: { code: 'USAGE_NOT_FOUND' },
      });
      // It never granted reads, and does not now.
      expect(await ledgerCall('GET', `/v1/accounts/${account}/balance`, KEYS.legacy)).toEqual(forbidden('accounts:read'));
      expect(ledger.output()).toMatch(/API key \\?"legacy-backend\\?" uses deprecated scope\(s\) accounts:write/);
    });
  });

  describe('two products sharing one Tally (HTTP)', () => {
    it("a chat key cannot read, charge, grant or mint a portal token for a karma account: 403 naming only the id it sent", async () => {
      expect(await ledgerCall('GET', `/v1/accounts/${KARMA}/balance`, KEYS.chat)).toEqual(outside(KARMA));
      expect(await ledgerCall('GET', `/v1/accounts/${KARMA}/usage?period=30d`, KEYS.chat)).toEqual(outside(KARMA));
      expect(await ledgerCall('GET', `/v1/accounts/${KARMA}/transactions`, KEYS.chat)).toEqual(outside(KARMA));
      expect(await grant(KARMA, KEYS.chat)).toEqual(outside(KARMA));
      expect(await ledgerCall('POST', `/v1/accounts/${KARMA}/purchases`, KEYS.chat, { paymentReference: 'pay-x', amount: '5' })).toEqual(outside(KARMA));
      expect(await ledgerCall('POST', `/v1/accounts/${KARMA}/authorizations`, KEYS.chat, { amount: '1', hold: { holdId: 'h-x', ttlSeconds: 60 } })).toEqual(outside(KARMA));
      expect(await ledgerCall('POST', `/v1/accounts/${KARMA}/portal-tokens`, KEYS.chat, {})).toEqual(outside(KARMA));
      expect(await ledgerCall('GET', `/v1/portal/session?accountId=${KARMA}`, KEYS.chat)).toEqual(outside(KARMA));
      // Charging it through usage-ingest: refused whole.
      expect(await call(ingest.base, 'POST', '/v1/usage-events', KEYS.chat, usage(KARMA))).toEqual({
        status: 403, body: { code: 'ACCOUNT_OUTSIDE_NAMESPACE', message: expect.any(String), details: { indexes: [0], accountIds: [KARMA] } },
      });
      expect((await balance(KARMA)).body).toMatchObject({ available: '10', held: '0' });
    });

    it('a chat key works on its own accounts: grant, balance, usage report, portal token', async () => {
      expect((await grant(CHAT, KEYS.chat, 'chat-own')).status).toBe(201);
      expect((await ledgerCall('GET', `/v1/accounts/${CHAT}/balance`, KEYS.chat)).status).toBe(200);
      expect((await ledgerCall('GET', `/v1/accounts/${CHAT}/usage?period=30d`, KEYS.chat)).status).toBe(200);
      expect(await ledgerCall('POST', `/v1/accounts/${CHAT}/portal-tokens`, KEYS.chat, {})).toMatchObject({ status: 201, body: { accountId: CHAT } });
    });

    it('a batch with one event outside the namespaces is refused whole, naming the failing indexes; nothing is produced', async () => {
      const mine = usage(CHAT, `batch-mine-${run}`);
      const batch = { events: [mine, usage(KARMA), usage(CHAT), usage(`karma-x-${run}`)] };
      expect(await call(ingest.base, 'POST', '/v1/usage-events', KEYS.chat, batch)).toEqual({
        status: 403, body: { code: 'ACCOUNT_OUTSIDE_NAMESPACE', message: expect.any(String), details: { indexes: [1, 3], accountIds: [KARMA, `karma-x-${run}`] } },
      });
      // Nothing of the refused batch was accepted: the same event sent alone is new, not a duplicate.
      expect(await call(ingest.base, 'POST', '/v1/usage-events', KEYS.chat, mine)).toMatchObject({ status: 202, body: { accepted: 1, duplicates: 0 } });
    });

    it('one currency across products: a key with both namespaces reads both', async () => {
      for (const accountId of [CHAT, KARMA]) expect((await ledgerCall('GET', `/v1/accounts/${accountId}/balance`, KEYS.both)).status).toBe(200);
      expect(await ledgerCall('GET', `/v1/accounts/video-${run}/balance`, KEYS.both)).toEqual(outside(`video-${run}`));
    });
  });

  describe('two products sharing one Tally (Kafka-direct)', () => {
    it("a message on chat's own topic for a karma account is dead-lettered with the reason; one for a chat account is applied", async () => {
      const account = `chat-kafka-${run}`;
      expect((await grant(account, KEYS.ops, 'welcome')).status).toBe(201);
      await waitFor(async () => (await balance(account)).body.available === '10', 30_000);
      const dlq = await collect(env.USAGE_DLQ_TOPIC);
      try {
        const message = (accountId: string, usageId: string) => ({
          key: accountId,
          value: JSON.stringify({
            // The actor a producer claims is its own word: chat's principal may write chat's topic, and claims to be karma's.
            id: usageId, type: 'UsageRecorded', version: 1, accountId, occurredAt: new Date().toISOString(), actor: 'karma-product', data: { feature: 'chat', model: 'gpt-4o', inputTokens: 0, outputTokens: 100_000 },
          }),
        });
        await producer.send({ topic: chatTopic, messages: [message(KARMA, `k-intrusion-${run}`), message(account, `k-own-${run}`)] });
        // 100,000 output tokens of gpt-4o at 10/M = 1 credit.
        await waitFor(async () => (await balance(account)).body.available === '9', 30_000);
        const dead = await waitFor(() => dlq.messages.find((m) => m.value.includes(`k-intrusion-${run}`)), 30_000);
        expect(dead.headers).toMatchObject({ [DeadLetterHeaders.reason]: 'ACCOUNT_OUTSIDE_NAMESPACE', [DeadLetterHeaders.originalTopic]: chatTopic });
        expect(JSON.parse(dead.headers[DeadLetterHeaders.details])).toMatchObject({ topic: chatTopic, accountId: KARMA, namespaces: ['chat-'] });
        expect(dlq.messages.some((m) => m.value.includes(`k-own-${run}`))).toBe(false);
        const karma = (await balance(KARMA)).body;
        expect(karma).toMatchObject({ available: '10', usedThisCycle: '0' });
        // The audit trail names what is known of who sent it (the product topic, which only chat's principal may
        // write), not the actor the message claims: a product could otherwise pass its usage off as another's.
        const history = await waitFor(async () => {
          const { body } = await ledgerCall('GET', `/v1/accounts/${account}/transactions?type=UsageDebited`, KEYS.ops);
          return body.items?.length ? body.items : undefined;
        }, 30_000);
        expect(history.map((item: { actor: string | null }) => item.actor)).toEqual([`topic:${chatTopic}`]);
      } finally {
        await dlq.stop();
      }
    });
  });
});
