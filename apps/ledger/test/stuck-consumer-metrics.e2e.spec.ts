import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Pool } from 'pg';
import { parsePrometheusText, samplesOf, sumOf, type PrometheusSample } from '@tally/metrics';
import { startServiceProcess, testDatabaseUrl, waitFor, type ServiceProcess } from '@tally/testing';
import { createTestSchema, createTopics, json, ledgerTestSettings } from './ledger.harness';

/**
 * Issue 15's "done when": scrape `/metrics` of a running ledger (a real process on the real broker and PostgreSQL)
 * while its projection fails on one message — a bug in production, played by a PostgreSQL trigger that refuses one
 * account's transaction row — and see the stuck consumer group and partition (lag above 0 and not moving, failures
 * rising, stalled = 1) and readiness turn 503; then remove the fault and see it recover by itself (the projection
 * retries the batch, it does not dead-letter it): lag 0, stalled 0, ready, the balance right.
 */
describe('ledger metrics while the projection is stuck on one message', () => {
  const { env, topics } = ledgerTestSettings();
  let schema: string;
  let drop: () => Promise<void>;
  let pool: Pool;
  let ledger: ServiceProcess | undefined;

  beforeAll(async () => {
    ({ schema, drop } = await createTestSchema('ledger_stuck'));
    await createTopics(topics);
    pool = new Pool({ connectionString: testDatabaseUrl() });
  });

  afterAll(async () => {
    await ledger?.kill('SIGKILL');
    await pool.end();
    await drop();
  });

  const scrape = async (): Promise<PrometheusSample[]> => {
    const response = await fetch(`${ledger?.base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    return parsePrometheusText(await response.text());
  };
  const readiness = async () => {
    const response = await fetch(`${ledger?.base}/health/ready`);
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };
  const projection = { group: env.PROJECTION_GROUP, topic: env.LEDGER_EVENTS_TOPIC };

  it('shows the stuck group and partition, turns not ready, and recovers once the fault is removed', async () => {
    ledger = await startServiceProcess(
      'ledger',
      // Small thresholds (validated config): stalled after 3 failed attempts, retries at most 1 s apart.
      { ...env, DATABASE_SCHEMA: schema, CONSUMER_RETRY_MAX_MS: '1000', CONSUMER_STALL_ATTEMPTS: '3', CONSUMER_STALL_SECONDS: '10' },
      90_000,
    );
    const api = json(ledger.base);

    // Healthy: a few accounts, the projection caught up on every partition, nothing stalled.
    for (const account of ['healthy-1', 'healthy-2', 'healthy-3', 'stuck-account']) {
      expect((await api.post(`/v1/accounts/${account}/grants`, { reason: 'test grant', idempotencyKey: 'first', amount: '10' })).status).toBe(201);
    }
    await waitFor(async () => (await api.get('/v1/accounts/stuck-account/balance')).body.available === '10', 60_000, 200);
    const healthy = await waitFor(async () => {
      const samples = await scrape();
      const lags = samplesOf(samples, 'tally_kafka_consumer_lag_messages', projection);
      return lags.length > 0 && lags.every((lag) => lag.value === 0) && sumOf(samples, 'tally_kafka_consumer_messages_total', projection) >= 4 ? samples : undefined;
    }, 60_000, 200);
    expect(sumOf(healthy, 'tally_kafka_consumer_stalled', projection)).toBe(0);
    expect(sumOf(healthy, 'tally_kafka_consumer_failures_total', projection)).toBe(0);
    expect(sumOf(healthy, 'tally_relay_published_events_total')).toBeGreaterThanOrEqual(4);

    // The fault: the projection's write of this account's transaction row fails, every time.
    await pool.query(`CREATE FUNCTION "${schema}".production_bug() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'production bug: cannot project %', NEW.event_id; END $$`);
    await pool.query(`CREATE TRIGGER production_bug BEFORE INSERT ON "${schema}".ledger_transactions
      FOR EACH ROW WHEN (NEW.account_id = 'stuck-account') EXECUTE FUNCTION "${schema}".production_bug()`);
    expect((await api.post('/v1/accounts/stuck-account/grants', { reason: 'test grant', idempotencyKey: 'second', amount: '5' })).status).toBe(201);

    // The stuck partition: stalled = 1 with lag above 0.
    const stuck = await waitFor(async () => {
      const samples = await scrape();
      const stalled = samplesOf(samples, 'tally_kafka_consumer_stalled', projection).find((sample) => sample.value === 1);
      if (!stalled) return undefined;
      const partition = stalled.labels.partition;
      const [lag] = samplesOf(samples, 'tally_kafka_consumer_lag_messages', { ...projection, partition });
      return lag.value > 0 ? { partition, lag: lag.value, failures: sumOf(samples, 'tally_kafka_consumer_failures_total', { ...projection, partition }) } : undefined;
    }, 60_000, 200);
    expect(stuck.failures).toBeGreaterThanOrEqual(3);
    const at = { ...projection, partition: stuck.partition };

    // Failures keep rising while the lag does not move; the class of the error is a database error (the trigger).
    const later = await waitFor(async () => {
      const samples = await scrape();
      return sumOf(samples, 'tally_kafka_consumer_failures_total', at) >= stuck.failures + 2 ? samples : undefined;
    }, 60_000, 200);
    expect(sumOf(later, 'tally_kafka_consumer_lag_messages', at)).toBe(stuck.lag);
    expect(sumOf(later, 'tally_kafka_consumer_stalled', at)).toBe(1);
    expect(sumOf(later, 'tally_kafka_consumer_failures_total', { ...at, reason: 'database' })).toBeGreaterThanOrEqual(stuck.failures + 2);
    expect(sumOf(later, 'tally_kafka_consumer_dead_letters_total', projection)).toBe(0);
    // Only that partition is stuck; the usage consumer and the relay are not.
    expect(samplesOf(later, 'tally_kafka_consumer_stalled', projection).filter((sample) => sample.value === 1)).toHaveLength(1);
    expect(sumOf(later, 'tally_relay_lag_events')).toBe(0);

    // Readiness names the same group, topic and partition; the log says why, at the same place.
    const notReady = await waitFor(async () => {
      const response = await readiness();
      return response.status === 503 ? response.body : undefined;
    }, 30_000, 200);
    const consumer = notReady.error['projection-consumer'];
    expect(consumer.groupId).toBe(env.PROJECTION_GROUP);
    expect(consumer.stalled[0].where).toMatchObject({ topic: env.LEDGER_EVENTS_TOPIC, partition: Number(stuck.partition) });
    expect(consumer.stalled[0].lastError).toContain('production bug: cannot project');
    expect(sumOf(await scrape(), 'tally_health_check_up', { check: 'projection-consumer' })).toBe(0);
    const logged = ledger.output().split('\n').filter((line) => line.includes('batch failed: rolled back, retrying') && line.includes(env.LEDGER_EVENTS_TOPIC));
    expect(logged[logged.length - 1]).toContain(`"partition":${stuck.partition}`);
    expect(logged[logged.length - 1]).toContain('production bug: cannot project');

    // The fix ships: the trigger goes. The projection's next retry goes through, without a replay.
    await pool.query(`DROP TRIGGER production_bug ON "${schema}".ledger_transactions`);
    const recovered = await waitFor(async () => {
      const samples = await scrape();
      const lags = samplesOf(samples, 'tally_kafka_consumer_lag_messages', projection);
      return lags.every((lag) => lag.value === 0) && sumOf(samples, 'tally_kafka_consumer_stalled', projection) === 0 ? samples : undefined;
    }, 60_000, 200);
    expect(sumOf(recovered, 'tally_kafka_consumer_failures_total', at)).toBeGreaterThanOrEqual(stuck.failures + 2);
    await waitFor(async () => (await readiness()).status === 200, 30_000, 200);
    expect(sumOf(await scrape(), 'tally_health_check_up', { check: 'projection-consumer' })).toBe(1);
    const balance = await api.get('/v1/accounts/stuck-account/balance');
    expect(balance.status).toBe(200);
    expect(balance.body.available).toBe('15');
    const transactions = await api.get('/v1/accounts/stuck-account/transactions');
    expect((transactions.body.items as unknown[]).length).toBe(2);

    // What else a scrape of the ledger holds: HTTP by route template (never the account id), the account cache, appends.
    const final = await scrape();
    expect(sumOf(final, 'tally_http_requests_total', { method: 'GET', route: '/v1/accounts/:accountId/balance', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(final.some((sample) => Object.values(sample.labels).some((value) => value.includes('stuck-account')))).toBe(false);
    expect(sumOf(final, 'tally_ledger_account_cache_hits_total') + sumOf(final, 'tally_ledger_account_cache_misses_total')).toBeGreaterThanOrEqual(5);
    expect(sumOf(final, 'tally_event_store_append_duration_seconds_count', { path: 'command' })).toBeGreaterThanOrEqual(5);
    expect(sumOf(final, 'tally_relay_lag_events')).toBe(0);
    expect(samplesOf(final, 'nodejs_eventloop_lag_p99_seconds')).toHaveLength(1);

    // The dashboard and the alert rules name, of what the ledger defines (libs, the ledger's own metrics), only series its scrape has.
    const text = await (await fetch(`${ledger.base}/metrics`)).text();
    const exposed = new Set(text.split('\n').flatMap((line) => {
      const typed = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (!typed) return [];
      return typed[2] === 'histogram' ? [typed[1], `${typed[1]}_bucket`, `${typed[1]}_sum`, `${typed[1]}_count`] : [typed[1]];
    }));
    const monitoring = readFileSync(resolve(__dirname, '../../../deploy/grafana/tally.dashboard.json'), 'utf8') + readFileSync(resolve(__dirname, '../../../deploy/prometheus/tally.rules.yaml'), 'utf8');
    const ledgerNamed = [...new Set([...monitoring.matchAll(/\b((?:tally_(?:kafka|relay|ledger|event_store|http|health)|nodejs|process)_[a-z0-9_]+)/g)].map(([, name]) => name))];
    expect(ledgerNamed.length).toBeGreaterThan(20);
    expect(ledgerNamed.filter((name) => !exposed.has(name))).toEqual([]);
  }, 300_000);
});
