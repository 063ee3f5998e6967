import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCredits } from '@tally/money';
import { createTestSchema, startServiceProcess, testDatabaseUrl, waitFor, type ServiceProcess } from '@tally/testing';
import type { Producer } from 'kafkajs';
import { Pool } from 'pg';
import { parseDocument } from 'yaml';
import { authorized, cliEnv, kafka, ledgerSettings, present, runCli, usageMessage, usageProducer } from './cli.harness';

const ACCOUNT = 'ops-1';
const NEW_MODEL = 'cli-test-model';

/** The rate card of config/, with one more model in its latest version: the "fix" of a dead-lettered usage event. */
function rateCardWithNewModel(dir: string): string {
  const doc = parseDocument(readFileSync('config/rate-card.yaml', 'utf8'));
  const versions = doc.get('versions') as { items: unknown[] };
  const last = versions.items.length - 1;
  doc.setIn(['versions', last, 'models', NEW_MODEL], doc.getIn(['versions', last, 'models', 'gpt-4o-mini']));
  const file = join(dir, 'rate-card-fixed.yaml');
  writeFileSync(file, doc.toString());
  return file;
}

/**
 * The CLI's other commands on real data: a ledger process, its Kafka topics and PostgreSQL schema. In order, as an
 * operator meets them: a plan and a rate card validated; an account inspected; consumer lag read and offsets moved
 * (refused while the group is live); a dead-lettered usage event listed, shown and replayed after the fix, applied
 * exactly once however often it is replayed.
 */
describe('tally account, consumers, dlq and config (real ledger process, Kafka, PostgreSQL)', () => {
  let schema: string;
  let drop: () => Promise<void>;
  let pool: Pool;
  let ledger: ServiceProcess | undefined;
  let producer: Producer;
  let env: Record<string, string>;
  const dir = mkdtempSync(join(tmpdir(), 'tally-cli-'));
  let fixedCard: string;
  let beforeUsage: string;

  beforeAll(async () => {
    ({ schema, drop } = await createTestSchema('cli_ops'));
    const settings = ledgerSettings(schema);
    env = { ...settings.env, CLI_SCHEMA: `${schema}_cli` };
    await settings.createTopics();
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 2 });
    fixedCard = rateCardWithNewModel(dir);
    ledger = await startServiceProcess('ledger', env);
    producer = await usageProducer();

    const grant = await fetch(`${ledger.base}/v1/accounts/${ACCOUNT}/grants`, {
      method: 'POST',
      headers: { ...authorized, 'content-type': 'application/json' },
      body: JSON.stringify({ idempotencyKey: 'welcome', amount: '100', reason: 'test grant' }),
    });
    expect(grant.status).toBeLessThan(300);
    await new Promise((done) => setTimeout(done, 50));
    beforeUsage = new Date().toISOString();
    await new Promise((done) => setTimeout(done, 50));
    await producer.send({
      topic: env.USAGE_EVENTS_TOPIC,
      acks: -1,
      messages: [usageMessage('u-1', ACCOUNT), usageMessage('u-2', ACCOUNT), usageMessage('u-bad', ACCOUNT, NEW_MODEL), usageMessage('u-3', ACCOUNT)],
    });
    await waitFor(async () => (await debits()) === 3 && (await deadLetters()) === 1, 60_000, 100);
  }, 120_000);

  afterAll(async () => {
    await producer?.disconnect();
    await ledger?.kill();
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}_cli" CASCADE`);
    await pool.end();
    await drop();
  });

  const debits = async (usageId?: string): Promise<number> =>
    Number(
      (await pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".events WHERE type = 'UsageDebited' AND ($1::text IS NULL OR data->>'usageId' = $1)`, [usageId ?? null])).rows[0]
        .n,
    );
  const deadLetters = async (): Promise<number> => {
    const admin = kafka().admin();
    await admin.connect();
    try {
      return (await admin.fetchTopicOffsets(env.USAGE_DLQ_TOPIC)).reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
    } finally {
      await admin.disconnect();
    }
  };
  const balance = async (at?: string) => {
    const response = await fetch(`${present(ledger, 'the ledger').base}/v1/accounts/${ACCOUNT}/balance${at ? `?at=${encodeURIComponent(at)}` : ''}`, { headers: authorized });
    return (await response.json()) as { available: string; asOfVersion: number };
  };
  const tally = (...args: string[]) => runCli(args, cliEnv(env, { CLI_SCHEMA: env.CLI_SCHEMA }));
  const lagOf = async (group: string) => {
    const run = await tally('consumers', 'lag', '--group', group, '--json');
    expect(run.code).toBe(0);
    return JSON.parse(run.stdout) as { group: string; topic: string; partition: number; applied: string | null; high: string; lag: string }[];
  };

  it('config validate: accepts the shipped plans and rate card, and names the refused field of a broken one', async () => {
    const ok = await tally('config', 'validate', '--plans', 'config/plans.yaml', '--rate-card', fixedCard);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ok {7}plans config\/plans\.yaml: .*"fallbackPlanId":"free"/m);
    expect(ok.stdout).toContain(NEW_MODEL);

    const broken = join(dir, 'plans-broken.yaml');
    writeFileSync(broken, readFileSync('config/plans.yaml', 'utf8').replace('fallbackPlanId: free', 'fallbackPlanId: nowhere'));
    const refused = await tally('config', 'validate', '--plans', broken, '--rate-card', 'config/rate-card.yaml', '--json');
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toEqual([
      { file: broken, kind: 'plans', ok: false, refused: { field: 'fallbackPlanId', code: 'INVALID_CATALOGUE', reason: expect.stringContaining('names no plan of the catalogue: "nowhere"') } },
      expect.objectContaining({ kind: 'rate-card', ok: true }),
    ]);
  }, 60_000);

  it('account inspect: the stream with causes, the balance at an instant as the API folds it, the read-model rows', async () => {
    const run = await tally('account', 'inspect', ACCOUNT, '--json');
    expect(run.code).toBe(0);
    const inspected = JSON.parse(run.stdout) as {
      events: { version: number; type: string; amount: string | null; key: string; cause: Record<string, unknown> }[];
      balanceAt: { available: string; version: number };
      readModel: { balance: { available: string; stream_version: number }; transactions: number; usageRecords: number };
    };
    const usage = inspected.events.filter((event) => event.type === 'UsageDebited');
    expect(usage.map((event) => event.cause.usageId)).toEqual(['u-1', 'u-2', 'u-3']);
    expect(usage.map((event) => event.key)).toEqual(['usage:u-1', 'usage:u-2', 'usage:u-3']);
    const price = -parseCredits(usage[0].amount ?? '0');
    expect(price).toBeGreaterThan(0n);
    expect(inspected.events.find((event) => event.type === 'CreditsGranted')).toMatchObject({
      amount: '100', key: expect.stringContaining('welcome'),
      // The audit trail: why (the grant's required reason) and who (the key's name).
      cause: expect.objectContaining({ reason: 'test grant' }), metadata: expect.objectContaining({ actor: expect.any(String) }),
    });

    const now = await balance();
    expect(inspected.balanceAt).toMatchObject({ available: now.available, version: now.asOfVersion });
    expect(parseCredits(now.available)).toBe(parseCredits('100') - 3n * price);
    expect(inspected.readModel).toMatchObject({ balance: { stream_version: now.asOfVersion }, usageRecords: 3 });
    expect(BigInt(String(inspected.readModel.balance.available))).toBe(parseCredits(now.available));

    // --at: folded up to an instant before the usage, as GET /balance?at= folds it.
    const then = JSON.parse((await tally('account', 'inspect', ACCOUNT, '--at', beforeUsage, '--json')).stdout) as { balanceAt: { available: string; version: number } };
    const api = await balance(beforeUsage);
    expect(then.balanceAt).toMatchObject({ available: '100', version: api.asOfVersion });
    expect(api.available).toBe('100');

    const unknown = await tally('account', 'inspect', 'nobody-here');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no account nobody-here');
  }, 60_000);

  it('dlq list, show and replay: the dead-lettered usage event is applied once after the fix, however often it is replayed', async () => {
    const listed = await tally('dlq', 'list', '--topic', env.USAGE_DLQ_TOPIC, '--json');
    expect(listed.code).toBe(0);
    const [letter] = JSON.parse(listed.stdout) as { partition: number; offset: string; reason: string; source: string; key: string; replayed: string }[];
    expect(letter).toMatchObject({ reason: 'UNKNOWN_MODEL', key: ACCOUNT, replayed: 'no', source: expect.stringContaining(env.USAGE_EVENTS_TOPIC) });

    const all = await tally('dlq', 'list', '--json');
    expect((JSON.parse(all.stdout) as { topic: string; messages: number; reasons: Record<string, number> }[]).find((t) => t.topic === env.USAGE_DLQ_TOPIC)).toMatchObject({
      messages: 1,
      reasons: { UNKNOWN_MODEL: 1 },
    });

    const shown = JSON.parse((await tally('dlq', 'show', env.USAGE_DLQ_TOPIC, String(letter.partition), letter.offset)).stdout) as { headers: Record<string, string>; value: { id: string } };
    expect(shown.value.id).toBe('u-bad');
    expect(shown.headers['x-dead-letter-details']).toContain(NEW_MODEL);

    // The fix: the rate card prices the new model; the ledger restarts with it.
    await present(ledger, 'the ledger').kill();
    ledger = await startServiceProcess('ledger', { ...env, RATE_CARD_PATH: fixedCard });
    expect(await debits('u-bad')).toBe(0);
    const dry = await tally('dlq', 'replay', env.USAGE_DLQ_TOPIC, '--all', '--dry-run');
    expect(dry.stdout).toContain('would replay 1');
    const unknownReason = await tally('dlq', 'replay', env.USAGE_DLQ_TOPIC, '--all', '--reason', 'UNKNOWN_MODELS');
    expect({ code: unknownReason.code, stderr: unknownReason.stderr }).toEqual({ code: 1, stderr: expect.stringContaining('no dead letter has reason UNKNOWN_MODELS (reasons: UNKNOWN_MODEL)') });
    const replay = await tally('dlq', 'replay', env.USAGE_DLQ_TOPIC, '--all', '--reason', 'UNKNOWN_MODEL');
    expect(replay.code).toBe(0);
    const [, target, targetPartition, targetOffset] = /replayed .* → (.*)\[(\d+)\]@(\d+)/.exec(replay.stdout) ?? [];
    expect(target).toBe(env.USAGE_EVENTS_TOPIC);
    // The copy says when the usage was first produced: a replay is stamped when it is sent (see the ledger's OCCURRED_IN_FUTURE).
    const copy = JSON.parse((await tally('dlq', 'show', target, targetPartition, targetOffset)).stdout) as { headers: Record<string, string> };
    expect(copy.headers['x-first-produced-at']).toBe(shown.headers['x-original-timestamp']);
    // Applied again by the group that dead-lettered it alone; a group Kafka does not know would apply it nowhere: refused.
    expect(copy.headers['x-replay-for-group']).toBe(env.CONSUMER_GROUP);
    const nowhere = await tally('dlq', 'replay', env.USAGE_DLQ_TOPIC, '--all', '--again', '--for-group', `${env.CONSUMER_GROUP}-renamed`);
    expect({ code: nowhere.code, stderr: nowhere.stderr }).toEqual({ code: 1, stderr: expect.stringContaining(`consumer group ${env.CONSUMER_GROUP}-renamed, which would apply the replay, is not known to Kafka`) });
    await waitFor(async () => (await debits('u-bad')) === 1 && (await lagOf(env.CONSUMER_GROUP)).every((row) => row.lag === '0'), 60_000, 200);
    const applied = await balance();

    // Again: recorded as replayed, so refused; with --again it is sent, and the ledger skips it (same usage id).
    const twice = await tally('dlq', 'replay', env.USAGE_DLQ_TOPIC, '--all');
    expect(twice.stdout).toContain('replayed 0, skipped 1 already replayed');
    const forced = await tally('dlq', 'replay', env.USAGE_DLQ_TOPIC, '--partition', String(letter.partition), '--offset', letter.offset, '--again');
    expect(forced.stdout).toContain('replayed 1, skipped 0');
    const highs = await lagOf(env.CONSUMER_GROUP);
    await waitFor(async () => (await lagOf(env.CONSUMER_GROUP)).every((row) => row.lag === '0'), 60_000, 200);
    expect(highs.length).toBeGreaterThan(0);
    expect(await debits('u-bad')).toBe(1);
    expect(await debits()).toBe(4);
    expect(await balance()).toEqual(applied);
    const relisted = JSON.parse((await tally('dlq', 'list', '--topic', env.USAGE_DLQ_TOPIC, '--json')).stdout) as { replayed: string }[];
    expect(relisted[0].replayed).toMatch(/^2x, last /);
  }, 180_000);
  it('dlq after its topic was recreated: a new dead letter at an offset used before is not taken for the one already replayed', async () => {
    const [letter] = JSON.parse((await tally('dlq', 'list', '--topic', env.USAGE_DLQ_TOPIC, '--json')).stdout) as { partition: number; offset: string; replayed: string }[];
    expect(letter.replayed).not.toBe('no');
    const shown = JSON.parse((await tally('dlq', 'show', env.USAGE_DLQ_TOPIC, String(letter.partition), letter.offset)).stdout) as { headers: Record<string, string>; value: unknown };
    const admin = kafka().admin();
    await admin.connect();
    try {
      const partitions = (await admin.fetchTopicOffsets(env.USAGE_DLQ_TOPIC)).length;
      await admin.deleteTopics({ topics: [env.USAGE_DLQ_TOPIC] });
      await waitFor(async () => !(await admin.listTopics()).includes(env.USAGE_DLQ_TOPIC), 30_000, 200);
      await waitFor(async () => admin.createTopics({ topics: [{ topic: env.USAGE_DLQ_TOPIC, numPartitions: partitions }], waitForLeaders: true }).catch(() => false), 30_000, 500);
    } finally {
      await admin.disconnect();
    }
    // Another dead letter lands at the same partition and offset in the new topic.
    await producer.send({
      topic: env.USAGE_DLQ_TOPIC,
      acks: -1,
      messages: [{ partition: letter.partition, key: ACCOUNT, value: JSON.stringify(shown.value), headers: shown.headers }],
    });
    const relisted = JSON.parse((await tally('dlq', 'list', '--topic', env.USAGE_DLQ_TOPIC, '--json')).stdout) as { partition: number; offset: string; replayed: string }[];
    expect(relisted).toEqual([expect.objectContaining({ partition: letter.partition, offset: letter.offset, replayed: 'no' })]);
    const dry = await tally('dlq', 'replay', env.USAGE_DLQ_TOPIC, '--all', '--dry-run');
    expect(dry.stdout).toContain('would replay 1, skipped 0');
  }, 120_000);

  it('dlq replay refuses a dead letter whose source topic no longer exists: nothing created, sent or recorded', async () => {
    const gone = `${env.USAGE_EVENTS_TOPIC}.gone-${Date.now()}`;
    const [letter] = JSON.parse((await tally('dlq', 'list', '--topic', env.USAGE_DLQ_TOPIC, '--json')).stdout) as { partition: number; offset: string }[];
    const shown = JSON.parse((await tally('dlq', 'show', env.USAGE_DLQ_TOPIC, String(letter.partition), letter.offset)).stdout) as { headers: Record<string, string>; value: unknown };
    const [sent] = await producer.send({
      topic: env.USAGE_DLQ_TOPIC,
      acks: -1,
      messages: [{ partition: letter.partition, key: ACCOUNT, value: JSON.stringify(shown.value), headers: { ...shown.headers, 'x-original-topic': gone } }],
    });
    const offset = String(sent.baseOffset);
    const refused = await tally('dlq', 'replay', env.USAGE_DLQ_TOPIC, '--partition', String(letter.partition), '--offset', offset);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${gone} does not exist`);
    const admin = kafka().admin();
    await admin.connect();
    try {
      expect(await admin.listTopics()).not.toContain(gone); // not created by the attempt
    } finally {
      await admin.disconnect();
    }
    const listed = JSON.parse((await tally('dlq', 'list', '--topic', env.USAGE_DLQ_TOPIC, '--json')).stdout) as { offset: string; replayed: string }[];
    expect(listed.find((row) => row.offset === offset)?.replayed).toBe('no');
  }, 120_000);

  it('dlq replay sends a dead letter\'s own headers as they came: a binary value byte for byte, a header without a value still without one', async () => {
    const target = `${env.USAGE_EVENTS_TOPIC}.headers-${Date.now()}`;
    const [letter] = JSON.parse((await tally('dlq', 'list', '--topic', env.USAGE_DLQ_TOPIC, '--json')).stdout) as { partition: number; offset: string }[];
    const shown = JSON.parse((await tally('dlq', 'show', env.USAGE_DLQ_TOPIC, String(letter.partition), letter.offset)).stdout) as { headers: Record<string, string>; value: unknown };
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80]); // not UTF-8: read as text it would come back as replacement characters
    const admin = kafka().admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: target, numPartitions: 1 }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
    const [sent] = await producer.send({
      topic: env.USAGE_DLQ_TOPIC,
      acks: -1,
      messages: [{
        partition: letter.partition, key: ACCOUNT, value: JSON.stringify(shown.value),
        headers: { ...shown.headers, 'x-original-topic': target, 'x-binary': binary, 'x-no-value': null as unknown as string },
      }],
    });
    const replay = await tally('dlq', 'replay', env.USAGE_DLQ_TOPIC, '--partition', String(letter.partition), '--offset', String(sent.baseOffset));
    expect(replay.stdout).toContain('replayed 1, skipped 0');

    const consumer = kafka().consumer({ groupId: `cli-test-headers-${Date.now()}` });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [target], fromBeginning: true });
      const copy = await new Promise<Record<string, unknown>>((resolve) => {
        void consumer.run({ eachMessage: async ({ message }) => resolve(message.headers ?? {}) });
      });
      expect(copy['x-binary']).toEqual(binary);
      expect(copy['x-no-value']).toBeNull();
      expect(String(copy['x-replayed-from'])).toBe(`${env.USAGE_DLQ_TOPIC}/${letter.partition}/${sent.baseOffset}`);
      expect(copy['x-dead-letter-reason']).toBeUndefined();
    } finally {
      await consumer.disconnect();
    }
  }, 120_000);

  // ledger.events.dlq.v1 holds the projection's and notification's dead letters. --for-group names one group to apply
  // every replay: the other group's letters would be passed over by theirs and recorded as replayed, never applied.
  it('dlq replay --for-group refuses dead letters that more than one group failed; list --limit prints the first ones and counts the rest', async () => {
    const [letter] = JSON.parse((await tally('dlq', 'list', '--topic', env.USAGE_DLQ_TOPIC, '--json')).stdout) as { partition: number; offset: string }[];
    const shown = JSON.parse((await tally('dlq', 'show', env.USAGE_DLQ_TOPIC, String(letter.partition), letter.offset)).stdout) as { headers: Record<string, string>; value: unknown };
    await producer.send({
      topic: env.USAGE_DLQ_TOPIC,
      acks: -1,
      messages: [{ partition: letter.partition, key: ACCOUNT, value: JSON.stringify(shown.value), headers: { ...shown.headers, 'x-consumer-group': 'another-group' } }],
    });
    const mixed = await tally('dlq', 'replay', env.USAGE_DLQ_TOPIC, '--all', '--again', '--for-group', env.CONSUMER_GROUP, '--dry-run');
    expect({ code: mixed.code, stderr: mixed.stderr }).toEqual({ code: 1, stderr: expect.stringContaining(`were failed by another-group, ${env.CONSUMER_GROUP}`) });

    const limited = await tally('dlq', 'list', '--topic', env.USAGE_DLQ_TOPIC, '--json', '--limit', '1');
    expect(JSON.parse(limited.stdout)).toHaveLength(1);
    expect(limited.stderr).toMatch(/… and \d+ more/);
  }, 120_000);

  it('consumers lag and set-offset: lag from the stored offsets; a move refused while the group is live, done once it is stopped', async () => {
    const lag = await lagOf(env.CONSUMER_GROUP);
    const usageRows = lag.filter((row) => row.topic === env.USAGE_EVENTS_TOPIC);
    // Every partition of the topic, also those the group never stored an offset for (no message applied there yet: a
    // partition stuck on its first message looks like this too), not only the ones it has a row for.
    expect(usageRows.map((row) => row.partition)).toEqual([0, 1, 2]);
    expect(usageRows.filter((row) => row.applied === null).length).toBeGreaterThan(0);
    expect(usageRows.every((row) => row.lag === '0' && (row.high === '0' || BigInt(row.applied ?? -1) === BigInt(row.high) - 1n))).toBe(true);
    expect((await lagOf(env.PROJECTION_GROUP)).every((row) => row.lag === '0')).toBe(true);

    // A group that stored nothing (a typo) is an error naming the groups that did, not an empty table and exit 0.
    const unknownGroup = await tally('consumers', 'lag', '--group', `${env.CONSUMER_GROUP}-typo`, '--json');
    expect({ code: unknownGroup.code, stdout: unknownGroup.stdout }).toEqual({ code: 1, stdout: '' });
    expect(unknownGroup.stderr).toContain(`group ${env.CONSUMER_GROUP}-typo stored no offset`);
    expect(unknownGroup.stderr).toContain(env.PROJECTION_GROUP);

    // Kafka not answering is a failure, not a table of unknown lags.
    const unreachable = await runCli(['consumers', 'lag', '--group', env.CONSUMER_GROUP, '--json'], cliEnv(env, { CLI_SCHEMA: env.CLI_SCHEMA, KAFKA_BROKERS: '127.0.0.1:1' }));
    expect(unreachable.code).toBe(1);
    expect(unreachable.stdout).toBe('');

    const busy = present(usageRows.find((row) => row.high !== '0'), 'a partition with usage events');
    const move = ['consumers', 'set-offset', '--group', env.CONSUMER_GROUP, '--topic', env.USAGE_EVENTS_TOPIC, '--partition', String(busy.partition), '--to-start'];
    const refused = await tally(...move);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refused: group .* has 1 live members/);

    const before = await balance();
    await present(ledger, 'the ledger').kill(); // graceful: its consumers leave the group
    // A mistyped group (with the schema named, as the error asks) and the right group in another schema: refused, and
    // no Kafka group is created for the typo.
    const typo = `${env.CONSUMER_GROUP}-typo`;
    const mistyped = await tally('consumers', 'set-offset', '--group', typo, '--topic', env.USAGE_EVENTS_TOPIC, '--partition', String(busy.partition), '--to-start', '--schema', schema);
    expect({ code: mistyped.code, stderr: mistyped.stderr }).toEqual({ code: 1, stderr: expect.stringContaining(`group ${typo} stored no offset of ${env.USAGE_EVENTS_TOPIC} in ${schema}`) });
    const elsewhere = await tally(...move, '--schema', env.CLI_SCHEMA);
    expect({ code: elsewhere.code, stderr: elsewhere.stderr }).toEqual({ code: 1, stderr: expect.stringContaining('stored no offset') });
    const admin = kafka().admin();
    await admin.connect();
    try {
      expect((await admin.listGroups()).groups.map((group) => group.groupId)).not.toContain(typo);
    } finally {
      await admin.disconnect();
    }
    const dry = await tally(...move, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('dry run: nothing changed');
    expect((await lagOf(env.CONSUMER_GROUP)).find((row) => row.topic === busy.topic && row.partition === busy.partition)?.lag).toBe('0');
    const done = await tally(...move);
    expect(done.code).toBe(0);
    const moved = (await lagOf(env.CONSUMER_GROUP)).find((row) => row.topic === busy.topic && row.partition === busy.partition);
    expect(moved).toMatchObject({ applied: '-1', lag: busy.high });

    // Restarted, it reads the whole partition again (the usage events, the replayed copies) and applies nothing twice.
    ledger = await startServiceProcess('ledger', { ...env, RATE_CARD_PATH: fixedCard });
    await waitFor(async () => (await lagOf(env.CONSUMER_GROUP)).every((row) => row.lag === '0'), 60_000, 500);
    expect(await debits()).toBe(4);
    expect(await balance()).toEqual(before);

    // Retention has moved the log's start: an offset before it is refused (the consumer would report the messages in
    // between as deleted before they were applied, and page TallyConsumerLostMessages, for messages applied long ago).
    const trimmer = kafka().admin();
    await trimmer.connect();
    try {
      await trimmer.fetchTopicMetadata({ topics: [env.USAGE_EVENTS_TOPIC] }); // kafkajs finds the leader in what it has loaded
      await trimmer.deleteTopicRecords({ topic: env.USAGE_EVENTS_TOPIC, partitions: [{ partition: busy.partition, offset: '1' }] });
    } finally {
      await trimmer.disconnect();
    }
    const beforeStart = await tally('consumers', 'set-offset', '--group', env.CONSUMER_GROUP, '--topic', env.USAGE_EVENTS_TOPIC, '--partition', String(busy.partition), '--offset', '0');
    expect({ code: beforeStart.code, stderr: beforeStart.stderr }).toEqual({ code: 1, stderr: expect.stringContaining('before the log start 1') });
  }, 180_000);

});
