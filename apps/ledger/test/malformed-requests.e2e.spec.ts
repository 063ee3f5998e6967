import type { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import {
  ECHO_MARKER, headerCases, mutatedBodyCases, problemWith, rawBodyCases, sendAll, testDatabaseUrl, urlCases, type MalformedRequest,
} from '@tally/testing';
import { API_KEY, createTestSchema, createTopics, json, ledgerTestSettings, startLedger } from './ledger.harness';

const SEED = 20261130;
const ACCOUNT = 'acct-fuzz';

/** Malformed requests against the real ledger: never a 5xx, always `{code, message}`, no event appended. */
describe('the ledger refuses malformed requests cleanly', () => {
  const { env, topics } = ledgerTestSettings();
  let app: INestApplication;
  let base: string;
  let schema: string;
  let drop: () => Promise<void>;

  const post = (label: string, path: string, body: unknown): MalformedRequest => ({
    label, method: 'POST', path: `/v1/accounts/${ACCOUNT}${path}`, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), mustRefuse: true,
  });
  const eventCount = async () => {
    const client = new Client({ connectionString: testDatabaseUrl() });
    await client.connect();
    const { rows } = await client.query(`select count(*)::int as n from "${schema}".events`);
    await client.end();
    return rows[0].n as number;
  };

  beforeAll(async () => {
    const created = await createTestSchema('ledger_fuzz');
    ({ schema, drop } = created);
    await createTopics(topics);
    ({ app, base } = await startLedger({ ...env, WORKERS: 'none', LOG_LEVEL: 'silent' }, schema));
    // Funds, so that a malformed hold or purchase let through would show as an appended event.
    expect((await json(base).post(`/v1/accounts/${ACCOUNT}/grants`, { idempotencyKey: 'fuzz-funds', amount: '100' })).status).toBe(201);
  });

  afterAll(async () => {
    await app?.close();
    await drop?.();
  });

  it('answers every malformed request with a 4xx {code, message}, echoes nothing, appends nothing and stays healthy', async () => {
    const usage = { feature: 'chat', model: 'gpt-4o', inputTokens: 10, outputTokens: 5 };
    const requests: MalformedRequest[] = [
      post('purchase with amount null', '/purchases', { paymentReference: 'pay-1', amount: null }),
      post('purchase with packId null', '/purchases', { paymentReference: 'pay-2', packId: null }),
      post('purchase with packId and amount null', '/purchases', { paymentReference: 'pay-3', packId: null, amount: null }),
      post('authorization with usage null', '/authorizations', { usage: null }),
      post('authorization with usage an array', '/authorizations', { usage: [usage] }),
      post('authorization with amount null and usage null', '/authorizations', { amount: null, usage: null }),
      post('authorization with hold an empty array', '/authorizations', { amount: '1', hold: [] }),
      post('authorization with hold an array of holds', '/authorizations', { amount: '1', hold: [{ holdId: 'h-arr' }] }),
      post('authorization with hold null', '/authorizations', { amount: '1', hold: null }),
      post('authorization with ttlSeconds null', '/authorizations', { amount: '1', hold: { holdId: 'h-ttl', ttlSeconds: null } }),
      post('authorization with usage metadata null', '/authorizations', { usage: { ...usage, metadata: null } }),
      post('grant with a NUL byte in the reason', '/grants', { idempotencyKey: 'g-nul', amount: '1', reason: `welcome\u0000${ECHO_MARKER}` }),
      post('grant with a lone surrogate in the reason', '/grants', { idempotencyKey: 'g-sur', amount: '1', reason: `\ud83d${ECHO_MARKER}` }),
      post('grant with reason null', '/grants', { idempotencyKey: 'g-null-reason', amount: '1', reason: null }),
      post('grant with expiresAt null', '/grants', { idempotencyKey: 'g-null-exp', amount: '1', expiresAt: null }),
      ...rawBodyCases('POST', `/v1/accounts/${ACCOUNT}/grants`),
      ...rawBodyCases('POST', `/v1/accounts/${ACCOUNT}/authorizations`),
      ...headerCases('GET', `/v1/accounts/${ACCOUNT}/balance`),
      ...urlCases('POST', '/v1/accounts/{}/purchases', true),
      ...urlCases('GET', '/v1/accounts/{}/balance', true),
      ...urlCases('GET', `/v1/accounts/${ACCOUNT}/balance?at={}`, true),
      ...urlCases('GET', '/v1/accounts/{}/balance/stream', true),
      ...urlCases('GET', `/v1/accounts/${ACCOUNT}/transactions?limit={}`, true),
      ...urlCases('GET', `/v1/accounts/${ACCOUNT}/transactions?cursor={}`, true),
      ...urlCases('GET', `/v1/accounts/${ACCOUNT}/transactions?type={}`, true),
      ...urlCases('GET', `/v1/accounts/${ACCOUNT}/usage?period={}`, true),
      ...urlCases('GET', `/v1/accounts/${ACCOUNT}/usage/export?from={}`, true),
      ...urlCases('DELETE', `/v1/accounts/${ACCOUNT}/holds/{}`, true),
      ...mutatedBodyCases(
        { method: 'POST', path: `/v1/accounts/${ACCOUNT}/grants`, valid: { idempotencyKey: 'fz-grant', amount: '1', expiresAt: '2099-01-01T00:00:00Z', reason: 'promo' }, strictFields: ['idempotencyKey', 'amount'], optionalFields: ['expiresAt', 'reason'] },
        { seed: SEED, runs: 80 },
      ),
      ...mutatedBodyCases(
        { method: 'POST', path: `/v1/accounts/${ACCOUNT}/purchases`, valid: { paymentReference: 'fz-pay', amount: '2' }, strictFields: ['paymentReference', 'amount'] },
        { seed: SEED + 1, runs: 60 },
      ),
      ...mutatedBodyCases(
        { method: 'POST', path: `/v1/accounts/${ACCOUNT}/authorizations`, valid: { amount: '1', hold: { holdId: 'fz-hold', ttlSeconds: 60 } }, strictFields: ['amount', 'hold.holdId'], optionalFields: ['hold', 'hold.ttlSeconds'] },
        { seed: SEED + 2, runs: 80 },
      ),
      ...mutatedBodyCases(
        { method: 'POST', path: `/v1/accounts/${ACCOUNT}/authorizations`, valid: { usage, hold: { holdId: 'fz-hold-usage' } }, strictFields: ['usage', 'usage.model', 'usage.feature', 'usage.inputTokens', 'hold.holdId'], optionalFields: ['hold'] },
        { seed: SEED + 3, runs: 60 },
      ),
    ];
    const events = await eventCount();
    const outcomes = await sendAll(base, API_KEY, requests);
    expect(outcomes.map(problemWith).filter(Boolean)).toEqual([]);
    expect(await eventCount()).toBe(events);
    // Folded from the event stream (this test runs no projection).
    expect((await json(base).get(`/v1/accounts/${ACCOUNT}/balance?at=${new Date().toISOString()}`)).body).toMatchObject({ available: '100', held: '0' });
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('treats a grant, purchase or hold retried with its keys in another order and its values respelled as the same command', async () => {
    const api = json(base);
    const account = '/v1/accounts/acct-respelled';
    expect((await api.post(`${account}/grants`, { idempotencyKey: 'g-1', amount: '5', expiresAt: '2099-01-01T00:00:00Z', reason: 'promo' })).status).toBe(201);
    const grant = await api.post(`${account}/grants`, { reason: 'promo', expiresAt: '2099-01-01T00:00:00.000Z', amount: '5.000000', idempotencyKey: 'g-1' });
    expect(grant).toMatchObject({ status: 200, body: { duplicate: true } });
    expect((await api.post(`${account}/purchases`, { paymentReference: 'p-1', amount: '2' })).status).toBe(201);
    expect(await api.post(`${account}/purchases`, { amount: '2.0', paymentReference: 'p-1' })).toMatchObject({ status: 200, body: { duplicate: true } });
    expect((await api.post(`${account}/authorizations`, { amount: '1', hold: { holdId: 'h-1', ttlSeconds: 60 } })).status).toBe(200);
    expect((await api.post(`${account}/authorizations`, { hold: { ttlSeconds: 60, holdId: 'h-1' }, amount: '1.00' })).status).toBe(200);
    expect((await api.get(`${account}/balance?at=${new Date().toISOString()}`)).body).toMatchObject({ available: '6', held: '1' });
  });

  it('takes an account id as long as the id pattern allows (128 characters) in the path', async () => {
    const longId = 'a'.repeat(128);
    const response = await json(base).post(`/v1/accounts/${longId}/grants`, { idempotencyKey: 'long-id', amount: '1' });
    expect(response.status).toBe(201);
  });
});
