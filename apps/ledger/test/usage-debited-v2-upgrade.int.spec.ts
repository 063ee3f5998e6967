import { Pool } from 'pg';
import { Topics, parseMessage, serializeEnvelope, type BalanceSnapshotV1 } from '@tally/contracts';
import { PostgresEventStore, START, ensureSchema, type NewEvent, type RecordedEventJson } from '@tally/event-store';
import { balanceOf, type RecordUsage } from '@tally/ledger-domain';
import type { Clock } from '@tally/shared';
import { createTestSchema, testDatabaseUrl } from '@tally/testing';
import { PUBLISH_METADATA_KEYS, accountStreamId, decodeEvent, ledgerEnvelopeJson, toLedgerEnvelope } from '@tally/ledger-events';
import { AccountRepository } from '../src/accounts/account.repository';
import type { LedgerConfig } from '../src/config/ledger.config';
import { applyBatch, migrateReadModels } from './history/read-model.fixtures';

/**
 * The UsageDebited v1 → v2 upgrade on a store the previous version wrote: its events are stored here byte for byte
 * as that version stored them (v1 payloads, no `schemaVersion` in the metadata), then the current repository folds
 * them, decides on top of them (writing v2), and the projection reads both what the old relay published (v1
 * envelopes, still on the topic during a rollout) and what the current relay publishes.
 */
const ACCOUNT = 'acct-upgrade';
const clock: Clock = { now: () => new Date('2026-11-03T00:00:00.000Z') };
const zero = '0';
const snapshot = (available: string, promotional: string, usedThisCycle: string): BalanceSnapshotV1 => ({
  available, allowance: zero, promotional, purchased: zero, held: zero, overdraft: zero, allocation: zero, usedThisCycle,
  cycleId: null, cycleEnd: null, planId: null, unlimited: false,
});
/** What the previous ledger version appended: an opened account, a promotional grant of 10, a usage of 1.5. */
const STORED_BY_V1: NewEvent[] = [
  {
    id: '00000000-0000-5000-8000-000000000001',
    type: 'AccountOpened',
    data: { accountId: ACCOUNT, openedAt: '2026-11-01T00:00:00.000Z' },
    metadata: { balanceAfter: snapshot(zero, zero, zero), commandKey: 'grant:g-1' },
  },
  {
    id: '00000000-0000-5000-8000-000000000002',
    type: 'CreditsGranted',
    data: { grantId: 'g-1', bucketId: 'g-1', kind: 'promotional', amount: '10', source: 'promo:welcome', grantedAt: '2026-11-01T00:00:00.000Z' },
    metadata: { balanceAfter: snapshot('10', '10', zero), commandKey: 'grant:g-1' },
  },
  {
    id: '00000000-0000-5000-8000-000000000003',
    type: 'UsageDebited',
    data: {
      usageId: 'u-old', amount: '1.5', perBucket: [{ bucketId: 'g-1', kind: 'promotional', amount: '1.5' }], overdraft: zero,
      pricing: { rateCardVersion: 'rc-1', lines: [{ model: 'gpt-4o', feature: 'chat', inputTokens: 1000, outputTokens: 200, amount: '1.5' }] },
      feature: 'chat', models: ['gpt-4o'], occurredAt: '2026-11-02T00:00:00.000Z', debitedAt: '2026-11-02T00:00:01.000Z',
    },
    metadata: { balanceAfter: snapshot('8.5', '8.5', '1.5'), commandKey: 'usage:u-old' },
  },
];

describe('UsageDebited v1 → v2 on a store holding v1 events', () => {
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let pool: Pool;
  let store: PostgresEventStore;

  beforeAll(async () => {
    schema = await createTestSchema('usage_v2_upgrade');
    pool = new Pool({ connectionString: testDatabaseUrl(), max: 4 });
    await ensureSchema(pool, schema.schema);
    await migrateReadModels(schema.schema);
    store = new PostgresEventStore({ pool, schema: schema.schema, listen: false });
    await store.appendMany([{ streamId: accountStreamId(ACCOUNT), expectedVersion: 'no_stream', events: STORED_BY_V1 }]);
  });

  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await schema?.drop();
  });

  it('folds the v1 events, writes new ones as v2, and projects v1 and v2 envelopes into one consistent history', async () => {
    const repository = new AccountRepository(store, { ACCOUNT_CACHE_SIZE: 10, ACCOUNT_CACHE_REMEMBERED: 250_000 } as LedgerConfig, clock);

    // Folded after the upgrade: the v1 debit counts (10 − 1.5), and is decoded through the upcaster (no labels).
    const loaded = await repository.load(ACCOUNT);
    expect(loaded.version).toBe(3);
    expect(balanceOf(loaded.state).available).toBe(8_500_000n);
    const [oldDebit] = (await store.readStream(accountStreamId(ACCOUNT))).filter((e) => e.type === 'UsageDebited');
    expect(decodeEvent(oldDebit)).toMatchObject({ type: 'UsageDebited', data: { usageId: 'u-old', amount: 1_500_000n } });
    expect(decodeEvent(oldDebit).data).not.toHaveProperty('metadata');

    // A usage decided now is stored as v2, with its labels.
    const usage: RecordUsage = {
      type: 'RecordUsage', accountId: ACCOUNT, usageId: 'u-new', amount: 2_000_000n, occurredAt: '2026-11-03T00:00:00.000Z', feature: 'chat',
      models: ['gpt-4o'], pricing: { rateCardVersion: 'rc-1', lines: [{ model: 'gpt-4o', feature: 'chat', inputTokens: 10, outputTokens: 5, amount: 2_000_000n }] },
      metadata: { project: 'p-42' },
    };
    await repository.execute(usage, 'usage:u-new');
    const stored = await store.readStream(accountStreamId(ACCOUNT));
    const newDebit = stored.find((e) => e.type === 'UsageDebited' && e.data.usageId === 'u-new');
    expect(newDebit?.metadata.schemaVersion).toBe(2);
    expect(newDebit?.data.metadata).toEqual({ project: 'p-42' });
    expect(oldDebit.metadata).not.toHaveProperty('schemaVersion'); // the store is never rewritten
    expect(balanceOf((await new AccountRepository(store, { ACCOUNT_CACHE_SIZE: 10, ACCOUNT_CACHE_REMEMBERED: 250_000 } as LedgerConfig, clock).load(ACCOUNT)).state).available).toBe(6_500_000n);

    // The current relay publishes every stored event at the current version: the v1 debit as v2 with no labels. It
    // reads the stored JSON texts (subscribeToAllJson) and splices them into the envelope (ledgerEnvelopeJson).
    const relayed = await readAllJson(store, stored.length);
    const republished = relayed.map((event) => parseMessage(Topics.ledgerEvents, ledgerEnvelopeJson(event)));
    expect(republished.map((m) => m.envelope)).toEqual(stored.map((event) => parseMessage(Topics.ledgerEvents, serializeEnvelope(toLedgerEnvelope(event))).envelope));
    const oldOnTheWire = republished.find((m) => m.type === 'UsageDebited' && m.data.usageId === 'u-old');
    expect(oldOnTheWire).toMatchObject({ sentVersion: 2, envelope: { version: 2 }, data: { metadata: {} } });

    // During the rollout the topic still holds what the previous relay published: v1 envelopes of the same events.
    const previousRelay = stored.slice(0, 3).map((event) =>
      parseMessage(Topics.ledgerEvents, serializeEnvelope({ ...toLedgerEnvelope(event), version: 1, data: event.data })),
    );
    expect(previousRelay.map((m) => m.sentVersion)).toEqual([1, 1, 1]);
    // The projection sees the old events as v1 (then redelivered as v2: idempotent by stream version) and the new ones as v2.
    await applyBatch(pool, schema.schema, previousRelay.map((m) => m.envelope));
    await applyBatch(pool, schema.schema, republished.map((m) => m.envelope));

    const s = `"${schema.schema}"`;
    const { rows: [balance] } = await pool.query(`select available::text, used_this_cycle::text, stream_version from ${s}.balances where account_id = $1`, [ACCOUNT]);
    expect(balance).toEqual({ available: '6500000', used_this_cycle: '3500000', stream_version: stored.length });
    const { rows: history } = await pool.query(
      `select type, amount::text, balance_after::text from ${s}.ledger_transactions where account_id = $1 order by stream_version`, [ACCOUNT],
    );
    expect(history).toEqual([
      { type: 'CreditsGranted', amount: '10000000', balance_after: '10000000' },
      { type: 'UsageDebited', amount: '-1500000', balance_after: '8500000' },
      { type: 'UsageDebited', amount: '-2000000', balance_after: '6500000' },
    ]);
    const { rows: usage_records } = await pool.query(`select usage_id, amount::text from ${s}.usage_records where account_id = $1 order by usage_id`, [ACCOUNT]);
    expect(usage_records).toEqual([{ usage_id: 'u-new', amount: '2000000' }, { usage_id: 'u-old', amount: '1500000' }]);
  });
});

/** The first `count` events of the store (this test's own schema) as the relay reads them. */
async function readAllJson(store: PostgresEventStore, count: number): Promise<RecordedEventJson[]> {
  const read: RecordedEventJson[] = [];
  let subscription: { stop(): Promise<void> } | undefined;
  await new Promise<void>((resolve, reject) => {
    subscription = store.subscribeToAllJson({
      after: START,
      metadataKeys: PUBLISH_METADATA_KEYS,
      onEvents: async (events) => {
        read.push(...events);
        if (read.length >= count) resolve();
      },
      onError: reject,
    });
  });
  await subscription?.stop();
  return read;
}
