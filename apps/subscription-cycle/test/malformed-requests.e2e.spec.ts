import { DataSource } from 'typeorm';
import { ManualClock } from '@tally/shared';
import {
  ECHO_MARKER, createTestSchema, headerCases, mutatedBodyCases, problemWith, rawBodyCases, sendAll, urlCases, type MalformedRequest,
} from '@tally/testing';
import { WRITER_KEY, startApp, testTopic, type TestApp } from './subscription-cycle.harness';

const SEED = 20261130;
const ACCOUNT = 'acct-fuzz';

/** Malformed requests against the real subscription-cycle service: never a 5xx, `{code, message}`, nothing stored. */
describe('subscription-cycle refuses malformed requests cleanly', () => {
  const clock = new ManualClock(new Date('2031-03-10T08:00:00.000Z'));
  let dropSchema: () => Promise<void>;
  let service: TestApp;
  const path = `/v1/accounts/${ACCOUNT}/subscription`;
  const put = (label: string, body: unknown): MalformedRequest => ({
    label, method: 'PUT', path, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), mustRefuse: true,
  });
  const stored = async () => {
    const db = service.app.get(DataSource);
    const schema = service.config.DATABASE_SCHEMA;
    const [subscriptions] = await db.query(`SELECT count(*)::int AS n FROM "${schema}".subscriptions`);
    const [outbox] = await db.query(`SELECT count(*)::int AS n FROM "${schema}".outbox_messages`);
    return { subscriptions: subscriptions.n as number, outbox: outbox.n as number };
  };

  beforeAll(async () => {
    const { schema, drop } = await createTestSchema('sc_fuzz');
    dropSchema = drop;
    service = await startApp({ schema, topic: testTopic(), clock });
  });

  afterAll(async () => {
    await service?.app.close();
    await dropSchema?.();
  });

  it('answers every malformed request with a 4xx {code, message}, echoes nothing, stores nothing and stays healthy', async () => {
    const valid = { planId: 'pro', interval: 'monthly', timeZone: 'Europe/Paris' };
    const requests: MalformedRequest[] = [
      put('a null body', null),
      { label: 'no body at all', method: 'PUT', path, mustRefuse: true },
      put('a NUL byte in the time zone', { ...valid, timeZone: `Europe/Paris\u0000${ECHO_MARKER}` }),
      put('a NUL byte in the plan id', { ...valid, planId: `pro\u0000${ECHO_MARKER}` }),
      put('timeZone null', { ...valid, timeZone: null }),
      put('interval null', { ...valid, interval: null }),
      ...rawBodyCases('PUT', path),
      ...headerCases('GET', path),
      ...urlCases('PUT', '/v1/accounts/{}/subscription', true),
      ...urlCases('GET', '/v1/accounts/{}/subscription', true),
      ...urlCases('DELETE', '/v1/accounts/{}/subscription', true),
      ...urlCases('GET', '/v1/plans?x={}', false),
      ...mutatedBodyCases({ method: 'PUT', path, valid, strictFields: ['planId'], optionalFields: ['interval', 'timeZone'] }, { seed: SEED, runs: 200 }),
    ];
    const before = await stored();
    const outcomes = await sendAll(service.baseUrl, WRITER_KEY, requests);
    expect(outcomes.map(problemWith).filter(Boolean)).toEqual([]);
    expect(await stored()).toEqual(before);
    expect((await fetch(`${service.baseUrl}/health`)).status).toBe(200);
  });
});
