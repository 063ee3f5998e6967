import { setTimeout as sleep } from 'node:timers/promises';
import { resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { ensureTopics } from '@tally/kafka';
import { hashApiKey } from '@tally/shared';
import {
  Acknowledgements, OutageAnswers, loadWhile, postgresOutage, startPrivatePostgres, startServiceProcess, testKafkaBrokers, uniqueSuffix, waitFor,
  type OutageTimeline, type PrivatePostgres, type ServiceProcess,
} from '@tally/testing';
import { PublishedMessages, WRITER_KEY } from './subscription-cycle.harness';


/**
 * PostgreSQL restarts (fast restart, then a few seconds down) on a PostgreSQL of the test's own while accounts
 * subscribe: subscription-cycle keeps running (API, scheduler and outbox), answers 503 + Retry-After meanwhile
 * (never 500, never a hang), and every subscription it acknowledged gets its first cycle published, once.
 */
describe('subscription-cycle across PostgreSQL restarts', () => {
  const topic = `t.${uniqueSuffix()}.subscription.events.v1`;
  let pg: PrivatePostgres | undefined;
  let service: ServiceProcess | undefined;
  let published: PublishedMessages | undefined;

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    await ensureTopics(new Kafka({ clientId: 'sc-restart-admin', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }), [topic], 3);
    published = await PublishedMessages.start(topic);
  }, 60_000);

  afterAll(async () => {
    await service?.kill('SIGKILL');
    await published?.stop().catch(() => undefined);
    await pg?.destroy();
  });

  it('rides out PostgreSQL restarts with 503 + Retry-After and publishes each acknowledged subscription once', async () => {
    if (!pg || !published) throw new Error('setup failed');
    const [db, messages] = [pg, published];
    const running = (service = await startServiceProcess('subscription-cycle', {
      LOG_LEVEL: 'warn', DATABASE_URL: db.url, KAFKA_BROKERS: testKafkaBrokers().join(','), SUBSCRIPTION_EVENTS_TOPIC: topic,
      PLANS_PATH: resolve(__dirname, '../../../config/plans.yaml'), SCHEDULER_INTERVAL_MS: '100', OUTBOX_INTERVAL_MS: '100',
      API_KEYS: JSON.stringify([{ name: 'writer', sha256: hashApiKey(WRITER_KEY), scopes: ['accounts:read', 'subscriptions:write'] }]),
    }));
    const alive = () => (running.child.exitCode === null && running.child.signalCode === null ? 'running' : `exited ${running.child.exitCode ?? running.child.signalCode}: ${running.output().slice(-1500)}`);
    const http = new OutageAnswers(running.base, WRITER_KEY);
    const requests = new Acknowledgements<string>();

    let n = 0;
    const subscribe = async (running: () => boolean) => {
      while (running()) {
        const accountId = `sub-${n++}`;
        const status = await http.request('PUT', `/v1/accounts/${accountId}/subscription`, { planId: 'pro', timeZone: 'UTC' });
        requests.record(accountId, status);
        await http.request('GET', `/v1/accounts/${accountId}/subscription`);
        await sleep(50);
      }
    };
    const load = loadWhile(subscribe, subscribe);
    let timeline: OutageTimeline;
    try {
      timeline = await postgresOutage(db, { onStep: (step) => void (step === 'down' && expect(alive()).toBe('running')) });
    } finally {
      await load.stop();
    }
    expect(alive()).toBe('running');
    const outcome = http.outcome(timeline);
    expect(outcome).toMatchObject({ failures: [], wrong: [], notUnavailableWhileDown: [] });
    expect(outcome.duringOutage).toBeGreaterThan(0);
    const { restartedAt, startedAt } = timeline;

    // Refused subscriptions are sent again, as a client would (PUT is idempotent); then each account has one cycle.
    await requests.resendUnsure((accountId) => http.request('PUT', `/v1/accounts/${accountId}/subscription`, { planId: 'pro', timeZone: 'UTC' }));
    const acked = [...requests.acked.keys()];
    await waitFor(() => [...acked].every((accountId) => messages.cycles(accountId).length > 0), 30_000, 200).catch(() => undefined);
    expect([...acked].filter((accountId) => messages.cycles(accountId).length === 0)).toEqual([]);
    // Republishing after a lost acknowledgement repeats the same message id; no account gets two first cycles.
    expect([...acked].filter((accountId) => new Set(messages.of(accountId, 'CycleStarted').map((m) => m.id)).size !== 1)).toEqual([]);
    expect(alive()).toBe('running');
    console.log(JSON.stringify({
      acked: acked.length, answers: http.answers.length, unavailable: http.answers.filter((a) => a.status === 503).length, duringOutage: outcome.duringOutage,
      okAfterRestartMs: http.firstOkAfter(restartedAt), okAfterStartMs: http.firstOkAfter(startedAt),
    }));
  }, 110_000);
});
