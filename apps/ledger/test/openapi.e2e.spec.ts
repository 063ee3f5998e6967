import type { INestApplication } from '@nestjs/common';
import { Kafka, logLevel } from 'kafkajs';
import { AUTH_STATUS_BY_CODE } from '@tally/shared';
import { OpenApiContract, catalogueProblems, conformanceProblems, testKafkaBrokers, waitFor } from '@tally/testing';
import { API_KEY, createTestSchema, createTopics, json, ledgerTestSettings, startLedger } from './ledger.harness';
import { LEDGER_STATUS_BY_CODE } from '../src/ledger.errors';
import { HISTORY_STATUS_BY_CODE } from '../src/read-models/history/history.errors';

const ACCOUNT = 'acct-openapi';

/** The real ledger (its consumers and projection running) answers only what its OpenAPI document describes. */
describe('the ledger and its OpenAPI document', () => {
  const { env, topics } = ledgerTestSettings();
  let app: INestApplication;
  let base: string;
  let drop: () => Promise<void>;
  let contract: OpenApiContract;

  beforeAll(async () => {
    const created = await createTestSchema('ledger_openapi');
    drop = created.drop;
    await createTopics(topics);
    ({ app, base } = await startLedger({ ...env, LOG_LEVEL: 'silent' }, created.schema));
    contract = await OpenApiContract.served(base);
    // The read side (balance, history) answers once the projection has the account.
    expect((await json(base).post(`/v1/accounts/${ACCOUNT}/grants`, { reason: 'test grant', idempotencyKey: 'oa-funds', amount: '100' })).status).toBe(201);
    // Something to correct: a grant to void and a usage (through the ledger's usage consumer) to refund.
    expect((await json(base).post(`/v1/accounts/${ACCOUNT}/grants`, { reason: 'test grant', idempotencyKey: 'oa-void', amount: '1' })).status).toBe(201);
    const producer = new Kafka({ clientId: 'openapi-e2e', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    await producer.send({
      topic: env.USAGE_EVENTS_TOPIC,
      messages: [{
        key: ACCOUNT,
        value: JSON.stringify({
          id: 'oa-u1', type: 'UsageRecorded', version: 1, accountId: ACCOUNT, occurredAt: new Date().toISOString(),
          data: { feature: 'chat', model: 'gpt-4o', inputTokens: 0, outputTokens: 200_000 },
        }),
      }],
    });
    await producer.disconnect();
    await waitFor(async () => (await json(base).get(`/v1/accounts/${ACCOUNT}/balance`)).body.available === '99', 30_000);
    await waitFor(async () => (await json(base).get(`/v1/accounts/${ACCOUNT}/balance`)).status === 200, 30_000);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await drop?.();
  });

  it('answers valid and invalid requests to every operation only as the document describes', async () => {
    const account = `/v1/accounts/${ACCOUNT}`;
    const problems = await conformanceProblems(contract, base, API_KEY, {
      grantCredits: [
        { path: `${account}/grants`, body: { idempotencyKey: 'oa-g1', amount: '5.5', expiresAt: '2099-01-01T00:00:00Z', reason: 'promo' } },
        { path: `${account}/grants`, body: { idempotencyKey: 'oa-g1', amount: '5.5', expiresAt: '2099-01-01T00:00:00Z', reason: 'promo' } },
      ],
      purchaseCredits: [
        { path: `${account}/purchases`, body: { paymentReference: 'oa-p1', amount: '2' } },
        { path: `${account}/purchases`, body: { paymentReference: 'oa-p2', packId: 'pack-1000' } },
      ],
      authorize: [
        { path: `${account}/authorizations`, body: { amount: '1' } },
        { path: `${account}/authorizations`, body: { amount: '1', hold: { holdId: 'oa-h1', ttlSeconds: 60 } } },
        { path: `${account}/authorizations`, body: { usage: { feature: 'chat', model: 'gpt-4o', inputTokens: 10, outputTokens: 5 } } },
      ],
      releaseHold: [{ path: `${account}/holds/oa-h1` }],
      getBalance: [{ path: `${account}/balance` }, { path: `${account}/balance?at=${new Date().toISOString()}` }],
      streamBalance: [{ path: `${account}/balance/stream` }],
      listTransactions: [{ path: `${account}/transactions?limit=5` }],
      getUsage: [{ path: `${account}/usage?period=7d` }],
      exportUsage: [{ path: `${account}/usage/export` }],
      mintPortalToken: [
        { path: `${account}/portal-tokens`, body: {} },
        { path: `${account}/portal-tokens`, body: { ttlSeconds: 120, purchase: true, checkoutUrl: 'https://chat.example/buy', upgradeUrl: 'https://chat.example/plans', timeZone: 'Asia/Tokyo' } },
      ],
      getPortalSession: [{ path: `/v1/portal/session?accountId=${ACCOUNT}` }],
      refundUsage: [
        { path: `${account}/usage/oa-u1/refunds`, body: { idempotencyKey: 'oa-r1', amount: '0.5', reason: 'support ticket' } },
        { path: `${account}/usage/oa-u1/refunds`, body: { idempotencyKey: 'oa-r1', amount: '0.5', reason: 'support ticket' } },
        { path: `${account}/usage/oa-u1/refunds`, body: { idempotencyKey: 'oa-r2', reason: 'the rest', restoreExpired: true } },
      ],
      voidGrant: [
        { path: `${account}/grants/grant:oa-void/void`, body: { idempotencyKey: 'oa-v1', reason: 'granted by mistake' } },
        { path: `${account}/grants/grant:oa-void/void`, body: { idempotencyKey: 'oa-v1', reason: 'granted by mistake' } },
      ],
    });
    expect(problems).toEqual([]);
  });

  // A hold resolves at most once and the account keeps only its open holds, so a hold never placed cannot be told from
  // one resolved long ago: both release nothing. The document lists no 404 (nor a 409: a release has no content to conflict).
  it('documents the release of a hold as it answers: a hold never placed, on an account never seen, releases nothing (200): no ACCOUNT_NOT_FOUND, HOLD_NOT_FOUND or IDEMPOTENCY_CONFLICT', async () => {
    const response = await fetch(`${base}/v1/accounts/acct-openapi-never-seen/holds/never-placed`, { method: 'DELETE', headers: { authorization: `Bearer ${API_KEY}` } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ holdId: 'never-placed', released: '0', available: '0' });
    const [releaseHold] = contract.operations.filter((operation) => operation.operationId === 'releaseHold');
    expect(contract.errorCodes(releaseHold, 404)).toEqual(['NOT_FOUND']); // the transport's own: a path no route takes
    expect(contract.errorCodes(releaseHold, 409)).toEqual([]);
  });

  it("documents each of the service's error codes under the status its error filter answers it with", () => {
    expect(catalogueProblems(contract, { ...AUTH_STATUS_BY_CODE, ...HISTORY_STATUS_BY_CODE, ...LEDGER_STATUS_BY_CODE })).toEqual([]);
  });
});
