import type { Envelope } from '@tally/contracts';
import { createTestSchema, testDatabaseUrl } from '@tally/testing';
import { Pool } from 'pg';
import { BalanceReadRepository } from '../../src/read-models/balance/balance.repository';
import { UsageQueryService } from '../../src/read-models/history/usage.query';
import { FoldBehindLiveError, LedgerProjection, rebuildReadModels, verifyReadModels, type EnvelopeSource } from '@tally/ledger-read-models';
import { AccountStream, batches } from './account-stream.fixtures';
import { applyBatch, migrateReadModels, testConfig, testPool, transactionQueries } from './read-model.fixtures';

/** A month of activity for two accounts, interleaved like a Kafka partition would deliver them. */
function scenario(): { events: Envelope<object>[]; alice: AccountStream; bob: AccountStream } {
  const alice = new AccountStream('alice');
  const bob = new AccountStream('bob');
  const events: Envelope<object>[] = [
    alice.opened(),
    alice.cycleStarted('alice-2025-03', '2025-03-01T00:00:00.000Z', '2025-04-01T00:00:00.000Z', '25'),
    alice.granted('allowance', '25', 'alice-allowance-03'),
    bob.opened(),
    bob.granted('purchased', '1000', 'bob-pack', { paymentReference: 'pay-bob' }),
  ];
  for (let day = 1; day <= 20; day += 1) {
    const at = `2025-03-${String(day).padStart(2, '0')}T09:30:00.123456Z`;
    events.push(alice.usage({ usageId: `alice-chat-${day}`, occurredAt: at, lines: [{ model: 'gpt-4o', amount: '0.333333', inputTokens: 1200, outputTokens: 300 }] }));
    if (day % 5 === 0) {
      events.push(
        alice.usage({
          usageId: `alice-council-${day}`,
          occurredAt: `2025-03-${String(day).padStart(2, '0')}T18:00:00Z`,
          lines: [
            { model: 'gpt-4o', amount: '0.5', inputTokens: 100, outputTokens: 100 },
            { model: 'claude-sonnet', amount: '0.75', inputTokens: 100, outputTokens: 120 },
          ],
        }),
      );
      events.push(bob.usage({ usageId: `bob-image-${day}`, feature: 'image', occurredAt: at, lines: [{ model: 'flux', amount: '4', images: 2, resolution: '1024x1024' }] }));
    }
  }
  events.push(alice.thresholdCrossed(20));
  events.push(alice.usage({ usageId: 'alice-video', feature: 'video', occurredAt: '2025-03-25T12:00:00Z', lines: [{ model: 'veo', amount: '30', videoSeconds: 8 }] }));
  events.push(alice.overdraftIncurred('alice-video', '1'));
  events.push(bob.holdPlaced('bob-hold', '50'));
  events.push(bob.holdReleased('bob-hold', '50'));
  // Corrections: a partial refund of an image, twice (cumulative), and a void of a promotional grant.
  events.push(bob.usageRefunded('refund:r1', 'bob-image-5', '1', [{ model: 'flux', amount: '1' }]));
  events.push(bob.granted('promotional', '3', 'bob-promo'));
  events.push(bob.usageRefunded('refund:r2', 'bob-image-5', '0.5', [{ model: 'flux', amount: '0.5' }]));
  events.push(bob.grantVoided('void:v1', 'bob-promo', 'promotional', '3'));
  return { events, alice, bob };
}

/**
 * The envelopes as the rebuild reads the event store: in commit order, the checkpoint the index of the last one read,
 * zero-padded. Reads the array as it is at each call, so a test can append to it while the rebuild runs.
 */
function sourceOver(envelopes: Envelope<object>[]): EnvelopeSource {
  return {
    async read(after, limit) {
      const from = after === '' ? 0 : Number(after) + 1;
      const page = envelopes.slice(from, from + limit);
      return { envelopes: page, next: page.length > 0 ? String(from + page.length - 1).padStart(8, '0') : after };
    },
  };
}

async function dump(pool: Pool, schema: string): Promise<Record<string, unknown[]>> {
  const tables: Record<string, string> = {
    balances: 'account_id',
    ledger_transactions: 'account_id, stream_version',
    usage_records: 'account_id, usage_id',
  };
  const out: Record<string, unknown[]> = {};
  for (const [table, order] of Object.entries(tables)) {
    out[table] = (await pool.query(`SELECT * FROM "${schema}".${table} ORDER BY ${order}`)).rows;
  }
  return out;
}

describe('LedgerProjection + history queries (PostgreSQL)', () => {
  let pool: Pool;
  let live: { schema: string; drop: () => Promise<void> };
  let rebuilt: { schema: string; drop: () => Promise<void> };
  const { events, alice } = scenario();

  beforeAll(async () => {
    pool = testPool();
    live = await createTestSchema('ledger_rm_live');
    rebuilt = await createTestSchema('ledger_rm_rebuilt');
    await migrateReadModels(live.schema);
    await migrateReadModels(rebuilt.schema);
    const parts = batches(events, 7);
    for (const [index, batch] of parts.entries()) {
      await applyBatch(pool, live.schema, batch);
      // Redelivery of the batch before, after this one moved past it: nothing may change or go backwards.
      if (index === 3) await applyBatch(pool, live.schema, parts[2]);
    }
    await applyBatch(pool, live.schema, events); // full replay
  });

  afterAll(async () => {
    await pool.end();
    await live.drop();
    await rebuilt.drop();
  });

  it('keeps the newest balance per account, with the cycle start', async () => {
    const balances = new BalanceReadRepository(pool, testConfig(live.schema));
    const balance = await balances.require('alice');
    expect(balance).toMatchObject({
      streamVersion: alice.streamVersion,
      available: '0',
      allocation: '25',
      overdraft: '16.66666',
      cycleId: 'alice-2025-03',
      cycleStart: '2025-03-01T00:00:00.000Z',
      cycleEnd: '2025-04-01T00:00:00.000Z',
      planId: 'pro',
    });
    // A late redelivery of the first batch never moves the balance back.
    await applyBatch(pool, live.schema, batches(events, 7)[0]);
    expect((await balances.require('alice')).streamVersion).toBe(alice.streamVersion);
    await expect(balances.require('nobody')).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    await expect(balances.require('bad id')).rejects.toThrow(/accountId/);
  });

  it('stores every column of every table as the events gave it, nulls included', async () => {
    const row = async (sql: string) => (await pool.query(sql.replaceAll('$s', `"${live.schema}"`))).rows[0];
    const stored = {
      balance: await row(`SELECT b.*, available::text, allowance::text, promotional::text, purchased::text, held::text, overdraft::text,
                                 allocation::text, used_this_cycle::text FROM $s.balances b WHERE account_id = 'bob'`),
      usage: await row(`SELECT r.*, input_tokens::text, output_tokens::text, amount::text FROM $s.usage_records r WHERE usage_id = 'bob-image-10'`),
      transaction: await row(`SELECT t.*, amount::text, balance_after::text FROM $s.ledger_transactions t WHERE account_id = 'alice' AND type = 'UsageDebited' ORDER BY stream_version DESC LIMIT 1`),
    };
    // The values the statement stored before its rows went as positional arrays (session 24), every column named.
    expect(stored.balance).toEqual({
      account_id: 'bob', stream_version: 12, available: '985500000', allowance: '0', promotional: '0', purchased: '985500000', held: '0',
      overdraft: '0', allocation: '0', used_this_cycle: '14500000', cycle_id: null, cycle_start: null, cycle_end: null, plan_id: null,
      unlimited: false, updated_at: new Date('2025-03-01T00:00:14.000Z'),
    });
    expect(stored.usage).toEqual({
      account_id: 'bob', usage_id: 'bob-image-10', stream_version: 4, occurred_at: new Date('2025-03-10T09:30:00.123Z'), feature: 'image',
      models: 'flux', input_tokens: '0', output_tokens: '0', images: 2, resolution: '1024x1024', video_seconds: 0, amount: '4000000',
      rate_card_version: '2025-03', refunded: '0', last_refund_version: 0,
      lines: [{ model: 'flux', amount: '4000000', refunded: '0', inputTokens: '0', outputTokens: '0' }],
    });
    expect(stored.transaction).toEqual({
      account_id: 'alice', stream_version: 29, event_id: 'alice:29', type: 'UsageDebited', amount: '-30000000', balance_after: '-33333320',
      occurred_at: new Date('2025-03-25T12:00:00.000Z'), actor: null,
      details: { price: '30', models: ['veo'], feature: 'video', usageId: 'alice-video', overdraft: '16.66666', rateCardVersion: '2025-03' },
    });
  });

  it('writes exactly one row per transaction and per usage, whatever the redeliveries', async () => {
    const counts = await pool.query(`SELECT
        (SELECT count(*) FROM "${live.schema}".ledger_transactions)::int AS transactions,
        (SELECT count(*) FROM "${live.schema}".usage_records)::int AS usages,
        (SELECT sum(jsonb_array_length(lines)) FROM "${live.schema}".usage_records)::int AS lines`);
    const expectedTransactions = events.filter((e) => !['AccountOpened', 'LowCreditThresholdCrossed'].includes(e.type)).length;
    expect(counts.rows[0]).toEqual({ transactions: expectedTransactions, usages: 29, lines: 33 });
  });

  it('links each correction to what it corrects and takes refunds off the usage, once, whatever the redeliveries', async () => {
    const rows = (await pool.query(`SELECT stream_version, type, amount::text, details FROM "${live.schema}".ledger_transactions WHERE account_id = 'bob' ORDER BY stream_version`)).rows;
    const debit = rows.find((row) => row.type === 'UsageDebited' && row.details.usageId === 'bob-image-5');
    const refunds = rows.filter((row) => row.type === 'UsageRefunded');
    const grant = rows.find((row) => row.type === 'CreditsGranted' && row.details.grantId === 'bob-promo');
    const voided = rows.find((row) => row.type === 'GrantVoided');
    expect(refunds.map((row) => [row.amount, row.details.corrects])).toEqual([
      ['1000000', { type: 'UsageDebited', usageId: 'bob-image-5', streamVersion: debit.stream_version }],
      ['500000', { type: 'UsageDebited', usageId: 'bob-image-5', streamVersion: debit.stream_version }],
    ]);
    expect(debit.details.corrections).toEqual([
      { type: 'UsageRefunded', streamVersion: refunds[0].stream_version, amount: '1' },
      { type: 'UsageRefunded', streamVersion: refunds[1].stream_version, amount: '0.5' },
    ]);
    expect(voided).toMatchObject({ amount: '-3000000', details: { corrects: { type: 'CreditsGranted', grantId: 'bob-promo', streamVersion: grant.stream_version } } });
    expect(grant.details.corrections).toEqual([{ type: 'GrantVoided', streamVersion: voided.stream_version, amount: '3' }]);
    const usage = await pool.query(`SELECT refunded::text AS record, lines FROM "${live.schema}".usage_records WHERE account_id = 'bob' AND usage_id = 'bob-image-5'`);
    expect(usage.rows).toEqual([{ record: '1500000', lines: [{ model: 'flux', amount: '4000000', inputTokens: '0', outputTokens: '0', refunded: '1500000' }] }]);
  });

  it('summarises usage by model, feature and day', async () => {
    const usage = new UsageQueryService(pool, testConfig(live.schema), new BalanceReadRepository(pool, testConfig(live.schema)));
    const summary = await usage.summary('alice', { period: 'cycle' });
    expect(summary.from).toBe('2025-03-01T00:00:00.000Z');
    expect(summary.to).toBe('2025-04-01T00:00:00.000Z');
    // 20 × 0.333333 + 4 × 1.25 + 30
    expect(summary.totals).toEqual({ credits: '41.66666', requests: 25 });
    expect(summary.byModel).toEqual([
      { model: 'veo', credits: '30', requests: 1 },
      { model: 'gpt-4o', credits: '8.66666', requests: 24 },
      { model: 'claude-sonnet', credits: '3', requests: 4 },
    ]);
    expect(summary.byFeature).toEqual([
      { feature: 'video', credits: '30', requests: 1 },
      { feature: 'chat', credits: '6.66666', requests: 20 },
      { feature: 'council', credits: '5', requests: 4 },
    ]);
    expect(summary.byDay).toHaveLength(21);
    expect(summary.byDay[4]).toEqual({ day: '2025-03-05', credits: '1.583333', requests: 2 });

    const window = await usage.summary('alice', { from: '2025-03-05T00:00:00Z', to: '2025-03-06' });
    expect(window.totals).toEqual({ credits: '1.583333', requests: 2 });
    // Days in the zone asked for (the account's, on its credits page): Tokyo's 6 March holds the chat of the 6th and the
    // council of the 5th (18:00 UTC is 03:00 on the 6th there), and a date-only from/to is that zone's midnight.
    const tokyo = await usage.summary('alice', { from: '2025-03-06', to: '2025-03-07', tz: 'Asia/Tokyo' });
    expect(tokyo).toMatchObject({
      from: '2025-03-05T15:00:00.000Z', to: '2025-03-06T15:00:00.000Z', timeZone: 'Asia/Tokyo',
      totals: { credits: '1.583333', requests: 2 }, byDay: [{ day: '2025-03-06', credits: '1.583333', requests: 2 }],
    });
    const cycleInTokyo = await usage.summary('alice', { period: 'cycle', tz: 'Asia/Tokyo' });
    expect(cycleInTokyo.byDay.slice(4, 6)).toEqual([{ day: '2025-03-05', credits: '0.333333', requests: 1 }, { day: '2025-03-06', credits: '1.583333', requests: 2 }]);
    expect(summary.timeZone).toBe('UTC');
    await expect(usage.summary('alice', { period: '7d', tz: 'Mars/Olympus_Mons' })).rejects.toMatchObject({ issues: [{ field: 'tz' }] });
    const empty = await usage.summary('alice', { period: '7d' });
    expect(empty).toMatchObject({ totals: { credits: '0', requests: 0 }, byModel: [], byFeature: [], byDay: [] });
    await expect(usage.summary('ghost', { period: '7d' })).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
  });

  it('pages transactions newest first with a cursor and filters', async () => {
    const transactions = transactionQueries(pool, live.schema);
    const seen: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await transactions.page('alice', { limit: '10', cursor });
      seen.push(...page.items.map((item) => item.streamVersion));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    const expected = events
      .filter((e) => e.accountId === 'alice' && !['AccountOpened', 'LowCreditThresholdCrossed'].includes(e.type))
      .map((e) => e.streamVersion as number)
      .reverse();
    expect(seen).toEqual(expected);

    const grants = await transactions.page('alice', { type: 'CreditsGranted,CycleStarted' });
    expect(grants.items.map((item) => [item.type, item.amount])).toEqual([['CreditsGranted', '25'], ['CycleStarted', null]]);
    expect(grants.nextCursor).toBeNull();
    const first = (await transactions.page('alice', { limit: '1' })).items[0];
    expect(first).toMatchObject({ type: 'OverdraftIncurred', amount: null, balanceAfter: '-16.66666', details: { usageId: 'alice-video' } });
    const video = await transactions.page('alice', { type: 'UsageDebited', from: '2025-03-25T00:00:00Z', to: '2025-03-26T00:00:00Z' });
    expect(video.items).toHaveLength(1);
    expect(video.items[0]).toMatchObject({ amount: '-30', details: { usageId: 'alice-video', overdraft: '16.66666' } });
  });

  it('loses nothing the live projection applied after the fold: the swap folds it in under its lock', async () => {
    const racing = await createTestSchema('ledger_rm_racing');
    try {
      await migrateReadModels(racing.schema);
      const split = events.length - 5;
      // The store as the rebuild reads it: it grows while the rebuild runs (the commands go on).
      const store: Envelope<object>[] = events.slice(0, split);
      await applyBatch(pool, racing.schema, store); // the live projection, caught up so far
      const source = sourceOver(store);
      let appended = false;
      const result = await rebuildReadModels({
        pool,
        schema: racing.schema,
        source,
        batchSize: 100,
        onProgress: (progress) => {
          // After the last unlocked pass: five more events are committed, published and applied to the live tables,
          // after the shadow's snapshot. Only the catch-up under the swap's lock can bring them into the new tables.
          if (progress.phase !== 'catch-up' || appended) return;
          appended = true;
          const late = events.slice(split);
          store.push(...late);
          void applyBatch(pool, racing.schema, late);
        },
      });
      expect(appended).toBe(true);
      expect(result).toMatchObject({ events: events.length, caughtUpAtSwap: 5 });
      expect(await dump(pool, racing.schema)).toEqual(await dump(pool, live.schema));
    } finally {
      await racing.drop();
    }
  });

  // The relay publishes only events older than every open transaction of the database (its gap-safe tail): a catch-up
  // pass held open over thousands of pages (what arrived during an hours-long fold) froze ledger.events.v1 meanwhile.
  it('rebuild and verify commit what arrived during the fold a page at a time: no transaction holds its writes while it reads on', async () => {
    const target = await createTestSchema('ledger_rm_paged');
    const name = `rm-paged-${process.pid}-${Date.now()}`;
    const rebuildPool = new Pool({ connectionString: testDatabaseUrl(), max: 2, application_name: name });
    try {
      await migrateReadModels(target.schema);
      const split = events.length - 30;
      const store: Envelope<object>[] = events.slice(0, split);
      await applyBatch(pool, target.schema, events);
      // Between pages (at each read of the store), whether a transaction of the rebuild still holds writes (an xid).
      const heldAcrossPages: boolean[] = [];
      const source: EnvelopeSource = {
        async read(after, limit) {
          const { rows } = await pool.query(`SELECT count(*)::int AS held FROM pg_stat_activity WHERE application_name = $1 AND backend_xid IS NOT NULL`, [name]);
          heldAcrossPages.push(rows[0].held > 0);
          const page = await sourceOver(store).read(after, limit);
          // The fold's last read: thirty events were committed while it ran, three pages of ten for the catch-up.
          if (page.envelopes.length === 0 && !grew) {
            grew = true;
            store.push(...events.slice(split));
          }
          return page;
        },
      };
      let grew = false;
      await rebuildReadModels({ pool: rebuildPool, schema: target.schema, source, batchSize: 10 });
      expect(grew).toBe(true);
      expect(heldAcrossPages.length).toBeGreaterThan(5);
      expect(heldAcrossPages.filter(Boolean)).toEqual([]);
      expect(await dump(pool, target.schema)).toEqual(await dump(pool, live.schema));

      heldAcrossPages.length = 0;
      store.length = split;
      grew = false;
      const verifying = verifyReadModels({ pool: rebuildPool, schema: target.schema, source, batchSize: 10, settleMs: 5_000 });
      expect(await verifying).toMatchObject({ identical: true });
      expect(grew).toBe(true);
      expect(heldAcrossPages.filter(Boolean)).toEqual([]);
    } finally {
      await rebuildPool.end();
      await target.drop();
    }
  });

  it('prepares its statement once per connection, and after a rebuild swaps the tables that statement writes the new ones', async () => {
    const swapped = await createTestSchema('ledger_rm_prepared');
    const client = await pool.connect();
    const projection = new LedgerProjection(swapped.schema);
    const applyOn = async (envelopes: Envelope<object>[]) => {
      await client.query('BEGIN');
      await projection.apply(client, envelopes);
      await client.query('COMMIT');
    };
    try {
      await migrateReadModels(swapped.schema);
      const split = events.length - 5;
      await applyOn(events.slice(0, split));
      const prepared = await client.query<{ name: string }>('SELECT name FROM pg_prepared_statements');
      expect(prepared.rows.map(({ name }) => name)).toContain(`tally-projection:${swapped.schema}:notify`);

      await rebuildReadModels({ pool, schema: swapped.schema, source: sourceOver(events.slice(0, split)), batchSize: 100 });
      // The same connection, its statement prepared against the tables the swap retired (and dropped).
      await applyOn(events.slice(split));
      expect(await dump(pool, swapped.schema)).toEqual(await dump(pool, live.schema));
    } finally {
      client.release();
      await swapped.drop();
    }
  });

  it('verify counts an account whose live tables are behind as pending, not as differences, when a correction in the gap rewrote older rows', async () => {
    // The live projection stopped before bob's second refund (of an older debit) and the void after it: the fold has
    // them, so bob's debit row at a version both sides have already lists one more correction in the fold.
    const behind = await createTestSchema('ledger_rm_behind');
    try {
      await migrateReadModels(behind.schema);
      await applyBatch(pool, behind.schema, events.slice(0, -2));
      const report = await verifyReadModels({ pool, schema: behind.schema, source: sourceOver(events), settleMs: 0 });
      expect(report).toMatchObject({ identical: false, differenceCount: 0, pending: 1, ahead: 0 });
      // Which account, on which versions: bob, two events behind.
      const bob = (await pool.query<{ v: number }>(`SELECT stream_version AS v FROM "${behind.schema}".balances WHERE account_id = 'bob'`)).rows[0].v;
      expect(report.unsettled).toEqual([{ accountId: 'bob', live: bob, fold: bob + 2 }]);

      // A balance row lost from the live tables: named too, with no live version.
      await pool.query(`DELETE FROM "${behind.schema}".balances WHERE account_id = 'alice'`);
      const lost = await verifyReadModels({ pool, schema: behind.schema, source: sourceOver(events), settleMs: 0 });
      expect(lost.unsettled).toContainEqual({ accountId: 'alice', live: null, fold: expect.any(Number) });
    } finally {
      await behind.drop();
    }
  });

  it('verify counts an account opened after the fold read the store as ahead, catches up with it, and finds the ledger identical', async () => {
    // The live projection has carol, opened after the fold's last read of the store: the fold's source gets her events
    // only once it has read everything else.
    const live2 = await createTestSchema('ledger_rm_new_account');
    try {
      await migrateReadModels(live2.schema);
      const carol = new AccountStream('carol');
      const late = [carol.opened(), carol.granted('promotional', '5', 'carol-grant')];
      await applyBatch(pool, live2.schema, [...events, ...late]);
      const store = [...events];
      const source: EnvelopeSource = {
        async read(after, limit) {
          const page = await sourceOver(store).read(after, limit);
          if (page.envelopes.length === 0 && store.length === events.length) store.push(...late);
          return page;
        },
      };
      const report = await verifyReadModels({ pool, schema: live2.schema, source, settleMs: 5_000 });
      expect(report).toMatchObject({ identical: true, differenceCount: 0, pending: 0, ahead: 0 });
    } finally {
      await live2.drop();
    }
  });

  it('refuses to swap in a fold that is behind the live tables (another, emptied or older store), and changes nothing', async () => {
    const target = await createTestSchema('ledger_rm_behind_live');
    try {
      await migrateReadModels(target.schema);
      await applyBatch(pool, target.schema, events);
      const before = await dump(pool, target.schema);

      // An empty store (the CLI reading another store than the ledger's), then one that stopped before the end.
      await expect(rebuildReadModels({ pool, schema: target.schema, source: sourceOver([]) })).rejects.toThrow(FoldBehindLiveError);
      const older = rebuildReadModels({ pool, schema: target.schema, source: sourceOver(events.slice(0, -2)), batchSize: 5 });
      await expect(older).rejects.toMatchObject({ accounts: 1, examples: ['bob'] });

      expect(await dump(pool, target.schema)).toEqual(before);
    } finally {
      await target.drop();
    }
  });

  // The CLI runs from a checkout; the ledger from its image. A CLI of another version built the shadow tables from its
  // own migrations and swapped them in: a column a newer ledger writes was gone (its projection then failed every
  // batch, and its migration, recorded as run, never ran again), or one an older ledger lacks was added.
  it('refuses a rebuild or verify whose read-model tables differ from the live ones (the CLI of another version), and changes nothing', async () => {
    const target = await createTestSchema('ledger_rm_versions');
    try {
      await migrateReadModels(target.schema);
      await applyBatch(pool, target.schema, events);
      await pool.query(`ALTER TABLE "${target.schema}".balances ADD COLUMN plan_tier text`); // a newer ledger's migration
      await pool.query(`ALTER TABLE "${target.schema}".ledger_transactions DROP COLUMN actor`); // as an older ledger had them
      await pool.query(`ALTER TABLE "${target.schema}".usage_records ALTER COLUMN feature TYPE varchar(64)`); // widened by a newer ledger
      const before = await dump(pool, target.schema);

      const refused = /only the live tables have balances\.plan_tier text, usage_records\.feature varchar\(64\) not null; only this CLI's have ledger_transactions\.actor varchar\(64\), usage_records\.feature varchar\(32\) not null\./;
      await expect(rebuildReadModels({ pool, schema: target.schema, source: sourceOver(events), batchSize: 50 })).rejects.toThrow(refused);
      await expect(verifyReadModels({ pool, schema: target.schema, source: sourceOver(events), batchSize: 50 })).rejects.toThrow(refused);

      expect(await dump(pool, target.schema)).toEqual(before);
      const columns = await pool.query(`SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'balances' AND column_name = 'plan_tier'`, [target.schema]);
      expect(columns.rowCount).toBe(1);
      const left = await pool.query(`SELECT nspname FROM pg_namespace WHERE nspname IN ($1, $2)`, [`${target.schema}_rebuild`, `${target.schema}_verify`]);
      expect(left.rows).toEqual([]); // the tables built to compare are gone too
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS "${target.schema}_rebuild" CASCADE`);
      await pool.query(`DROP SCHEMA IF EXISTS "${target.schema}_verify" CASCADE`);
      await target.drop();
    }
  });

  // A migration may add only an index (history by type, by time): a CLI of a version without it passed the column
  // check, and its swap left the live tables without the index, which the ledger, its migration recorded as run, never
  // made again. Indexes are compared too.
  it('refuses a rebuild whose read-model tables have other indexes or constraints than the live ones, and changes nothing', async () => {
    const target = await createTestSchema('ledger_rm_indexes');
    try {
      await migrateReadModels(target.schema);
      await applyBatch(pool, target.schema, events);
      await pool.query(`CREATE INDEX ledger_transactions_actor_idx ON "${target.schema}".ledger_transactions (actor)`); // a newer ledger's
      await pool.query(`DROP INDEX "${target.schema}".usage_records_account_occurred_idx`); // as an older ledger had them
      // A check constraint (primary keys and unique ones are indexes) a newer migration made: the swap would drop it too.
      await pool.query(`ALTER TABLE "${target.schema}".usage_records ADD CONSTRAINT usage_records_refunded_check CHECK (refunded <= amount)`);
      const before = await dump(pool, target.schema);

      const refused = /only the live tables have index CREATE INDEX ledger_transactions_actor_idx ON ledger_transactions USING btree \(actor\), constraint usage_records\.usage_records_refunded_check CHECK \(\(refunded <= amount\)\); only this CLI's have index CREATE INDEX usage_records_account_occurred_idx ON usage_records/;
      await expect(rebuildReadModels({ pool, schema: target.schema, source: sourceOver(events), batchSize: 50 })).rejects.toThrow(refused);
      expect(await dump(pool, target.schema)).toEqual(before);
      const kept = await pool.query(`SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = 'ledger_transactions_actor_idx'`, [target.schema]);
      expect(kept.rowCount).toBe(1);
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS "${target.schema}_rebuild" CASCADE`);
      await target.drop();
    }
  });

  it('keeps the tables a rebuild retired with keepRetired through the next rebuild, under a name of their own', async () => {
    const target = await createTestSchema('ledger_rm_keep');
    const schemas = async () =>
      (await pool.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1 ORDER BY nspname`, [`${target.schema}_retired%`])).rows.map((row) => row.nspname);
    try {
      await migrateReadModels(target.schema);
      await applyBatch(pool, target.schema, events);
      const before = await dump(pool, target.schema);

      const kept = await rebuildReadModels({ pool, schema: target.schema, source: sourceOver(events), batchSize: 50, keepRetired: true });
      expect(kept.retiredSchema).toMatch(new RegExp(`^${target.schema}_retired_\\d{17}$`));
      expect(await schemas()).toEqual([kept.retiredSchema]);
      // The next rebuild, keeping nothing, leaves the kept tables alone.
      await rebuildReadModels({ pool, schema: target.schema, source: sourceOver(events), batchSize: 50 });
      expect(await schemas()).toEqual([kept.retiredSchema]);
      expect(await dump(pool, kept.retiredSchema as string)).toEqual(before);
    } finally {
      for (const schema of await schemas()) await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
      await target.drop();
    }
  });

  it('rebuilds the same tables, row for row, from the event stream, into shadow tables swapped in', async () => {
    const source = sourceOver(events);
    // Garbage first, to prove the rebuilt tables replace the old ones.
    const stale = new AccountStream('stale');
    await applyBatch(pool, rebuilt.schema, [stale.opened(), stale.granted('promotional', '5', 'stale-grant')]);
    // Its account is in no event of the store: only swapped out when that is allowed (the next test: refused).
    const result = await rebuildReadModels({ pool, schema: rebuilt.schema, source, batchSize: 11, allowBehindLive: true });
    expect(result).toMatchObject({ events: events.length, skipped: 0, caughtUpAtSwap: 0 });
    expect(await dump(pool, rebuilt.schema)).toEqual(await dump(pool, live.schema));
    const verified = await verifyReadModels({ pool, schema: rebuilt.schema, source, settleMs: 0 });
    expect(verified).toMatchObject({ identical: true, differenceCount: 0, pending: 0, ahead: 0 });

    // A wrong balance and a lost transaction row are each reported, naming the account and the table.
    await pool.query(`UPDATE "${rebuilt.schema}".balances SET available = available + 1 WHERE account_id = 'alice'`);
    await pool.query(`DELETE FROM "${rebuilt.schema}".ledger_transactions WHERE account_id = 'bob' AND stream_version = 2`);
    const broken = await verifyReadModels({ pool, schema: rebuilt.schema, source, settleMs: 0 });
    expect(broken).toMatchObject({ identical: false, differenceCount: 2, pending: 0 });
    expect(broken.differences.map(({ table, accountId, kind }) => [table, accountId, kind]).sort()).toEqual([
      ['balances', 'alice', 'differs'],
      ['ledger_transactions', 'bob', 'missing in live'],
    ]);
  });
});
