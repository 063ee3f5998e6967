import { Kafka, logLevel } from 'kafkajs';
import { ensureTopics } from '@tally/kafka';
import { startPrivateKafka, startServiceProcess, type PrivateKafka, type ServiceProcess } from '@tally/testing';
import { createTestSchema, grantThenChargeOneChat, ledgerTestSettings } from './ledger.harness';

/**
 * Kafka over TLS with SASL, as managed Kafka requires (issue 15): a broker of the test's own with a SASL_SSL
 * listener (a certificate signed by a CA made for it, PLAIN users). The ledger and usage-ingest, configured only
 * by KAFKA_SSL, KAFKA_SSL_CA_FILE and KAFKA_SASL_*, carry usage to the balance through it (ingest's producer, the
 * ledger's consumers, relay and projection); a wrong password or an untrusted CA stops a service at boot.
 */
describe('Kafka over TLS and SASL', () => {
  const { env, topics } = ledgerTestSettings();
  const drops: (() => Promise<void>)[] = [];
  const services: ServiceProcess[] = [];
  let kafka: PrivateKafka;
  let secured: { broker: string; caFile: string };
  const security = (overrides: Record<string, string> = {}) => ({
    KAFKA_BROKERS: secured.broker,
    KAFKA_SSL: 'true',
    KAFKA_SSL_CA_FILE: secured.caFile,
    KAFKA_SASL_MECHANISM: 'plain',
    KAFKA_SASL_USERNAME: 'tally',
    KAFKA_SASL_PASSWORD: 'broker-secret',
    ...overrides,
  });
  const start = async (app: string, extra: Record<string, string>) => {
    const schema = await createTestSchema(`${app.replace('-', '_')}_tls`);
    drops.push(schema.drop);
    const service = await startServiceProcess(app, { ...env, DATABASE_SCHEMA: schema.schema, ...extra }, 90_000);
    services.push(service);
    return service;
  };

  beforeAll(async () => {
    kafka = await startPrivateKafka({ saslSsl: { users: { tally: 'broker-secret' } } });
    if (!kafka.secured) throw new Error('the private broker has no secured listener');
    secured = kafka.secured;
    // Topics through the broker's plaintext listener (the test's own admin), as an operator's tooling would.
    await ensureTopics(new Kafka({ clientId: 'tls-test-admin', brokers: [kafka.broker], logLevel: logLevel.NOTHING }), topics, 3);
  }, 120_000);

  afterAll(async () => {
    for (const service of services) await service.kill();
    await kafka?.destroy();
    for (const drop of drops) await drop();
  });

  it('carries usage from usage-ingest to the ledger balance over SASL_SSL', async () => {
    const ledger = await start('ledger', security());
    const ingest = await start('usage-ingest', security());
    // The grant goes through the relay and the projection, the usage through ingest's producer and the ledger's consumer.
    expect(await grantThenChargeOneChat(ledger.base, ingest.base, 'acct-tls')).toMatchObject({ available: '9.994', usedThisCycle: '0.006' });
  }, 240_000);

  // A service that cannot authenticate to or trust the broker refuses to start (exit 1, kafkajs's reason in its log),
  // so a misconfiguration shows as a crash loop under a supervisor, never as a service that accepts and loses work.
  it.each([
    ['a wrong SASL password', () => security({ KAFKA_SASL_PASSWORD: 'not-the-password' }), /SASL PLAIN authentication failed/],
    // Without KAFKA_SSL_CA_FILE only Node's public CAs are trusted, and the broker's CA is not one of them.
    ['a broker certificate from a CA it does not trust', () => { const { KAFKA_SSL_CA_FILE: _ca, ...rest } = security(); return rest; }, /self-signed certificate in certificate chain/],
  ])('usage-ingest refuses to start with %s', async (_case, config, reason) => {
    const schema = await createTestSchema('ingest_tls_refused');
    drops.push(schema.drop);
    const started = startServiceProcess('usage-ingest', { ...env, DATABASE_SCHEMA: schema.schema, ...config() }, 90_000, '/health/live');
    await expect(started).rejects.toThrow(/usage-ingest exited with 1 before/);
    await expect(started).rejects.toThrow(reason);
  }, 120_000);
});
