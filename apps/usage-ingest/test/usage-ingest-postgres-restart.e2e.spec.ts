import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { ensureTopics } from '@tally/kafka';
import { hashApiKey } from '@tally/shared';
import {
  Acknowledgements, OutageAnswers, loadWhile, postgresOutage, startPrivatePostgres, startServiceProcess, testKafkaBrokers, uniqueSuffix, waitFor,
  type OutageTimeline, type PrivatePostgres, type ServiceProcess,
} from '@tally/testing';
import { rememberedUsageBodies } from './restart-usage.fixtures';

const WRITER = 'ingest-restart-writer';

/**
 * PostgreSQL restarts (fast restart, then a few seconds down) on a PostgreSQL of the test's own while usage is
 * posted: usage-ingest keeps running, answers 503 + Retry-After meanwhile (never 500, never a hang), and every
 * usage event it acknowledged (202) is on the topic.
 */
describe('usage-ingest across PostgreSQL restarts', () => {
  const topic = `t.${uniqueSuffix()}.usage.events.v1`;
  let pg: PrivatePostgres | undefined;
  let service: ServiceProcess | undefined;
  let consumer: Consumer | undefined;

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    await ensureTopics(new Kafka({ clientId: 'ingest-restart-admin', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }), [topic], 3);
  }, 60_000);

  afterAll(async () => {
    await service?.kill('SIGKILL');
    await consumer?.disconnect().catch(() => undefined);
    await pg?.destroy();
  });

  it('rides out PostgreSQL restarts with 503 + Retry-After and publishes every acknowledged usage event', async () => {
    if (!pg) throw new Error('setup failed');
    const db = pg;
    const running = (service = await startServiceProcess('usage-ingest', {
      LOG_LEVEL: 'warn', DATABASE_URL: db.url, KAFKA_BROKERS: testKafkaBrokers().join(','), USAGE_EVENTS_TOPIC: topic,
      API_KEYS: JSON.stringify([{ name: 'writer', sha256: hashApiKey(WRITER), scopes: ['usage:write'] }]),
    }));
    const alive = () => (running.child.exitCode === null && running.child.signalCode === null ? 'running' : `exited ${running.child.exitCode ?? running.child.signalCode}: ${running.output().slice(-1500)}`);
    const http = new OutageAnswers(running.base, WRITER);
    const usage = rememberedUsageBodies();
    const requests = new Acknowledgements<string>();

    let n = 0;
    const post = async (running: () => boolean) => {
      while (running()) {
        const id = `u-${n++}`;
        const status = await http.request('POST', '/v1/usage-events', usage(id));
        requests.record(id, status);
        await sleep(20);
      }
    };
    const load = loadWhile(post, post);
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

    // What was refused is sent again with the same id, as a client would; then every id is on the topic.
    await requests.resendUnsure((id) => http.request('POST', '/v1/usage-events', usage(id)));
    const acked = [...requests.acked.keys()];
    const seen = new Set<string>();
    consumer = new Kafka({ clientId: 'ingest-restart-reader', brokers: testKafkaBrokers(), logLevel: logLevel.NOTHING }).consumer({ groupId: `reader-${uniqueSuffix()}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void seen.add((JSON.parse(message.value?.toString() ?? '{}') as { id: string }).id) });
    await waitFor(() => [...acked].every((id) => seen.has(id)), 30_000, 200).catch(() => undefined);
    expect([...acked].filter((id) => !seen.has(id))).toEqual([]);
    console.log(JSON.stringify({
      acked: acked.length, answers: http.answers.length, unavailable: http.answers.filter((a) => a.status === 503).length, duringOutage: outcome.duringOutage,
      okAfterRestartMs: http.firstOkAfter(restartedAt), okAfterStartMs: http.firstOkAfter(startedAt),
    }));
  }, 110_000);
});
