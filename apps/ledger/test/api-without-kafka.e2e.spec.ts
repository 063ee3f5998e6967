import type { INestApplication } from '@nestjs/common';
import { freePort } from '@tally/testing';
import { createTestSchema, json, ledgerTestSettings, startLedger } from './ledger.harness';

/**
 * The ledger's HTTP pods (WORKERS=none: ledger-api in deploy/k8s) consume and produce nothing: the relay and the
 * consumers run in the worker pods. A Kafka outage must not take them out of service (every authorization and
 * balance refused at the Service) nor keep a new one from starting: they answer from PostgreSQL alone.
 */
describe('the ledger API without workers, while Kafka cannot be reached', () => {
  const { env } = ledgerTestSettings();
  let app: INestApplication;
  let base: string;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const created = await createTestSchema('ledger_no_kafka');
    drop = created.drop;
    // A port nobody listens on: the brokers are down.
    ({ app, base } = await startLedger({ ...env, KAFKA_BROKERS: `127.0.0.1:${await freePort()}`, WORKERS: 'none', LOG_LEVEL: 'silent' }, created.schema));
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await drop?.();
  });

  it('starts, is ready, and grants, authorizes and answers balances', async () => {
    const api = json(base);
    const ready = await fetch(`${base}/health/ready`);
    expect({ status: ready.status, body: await ready.json() }).toMatchObject({ status: 200 });
    const account = '/v1/accounts/acct-no-kafka';
    expect((await api.post(`${account}/purchases`, { paymentReference: 'p-1', amount: '5' })).status).toBe(201);
    expect((await api.post(`${account}/authorizations`, { amount: '2', hold: { holdId: 'h-1', ttlSeconds: 60 } })).status).toBe(200);
    expect((await api.get(`${account}/balance?at=${new Date().toISOString()}`)).body).toMatchObject({ available: '3', held: '2' });
  });
});
