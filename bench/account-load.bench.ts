/**
 * The cost of a long account stream: one account receives `BENCH_STREAM_EVENTS` usage events (100,000 by default,
 * through the ledger as any usage), then the ledger restarts (a cold account cache, as after a deploy) and the first
 * authorization on that account has to load it; the second finds it cached. Issue 17's target is ≤ 50 ms for a
 * 100,000-event stream: the ledger snapshots long streams (ACCOUNT_SNAPSHOT_EVERY), so the load reads the snapshot
 * and the events after it; with ACCOUNT_SNAPSHOT_EVERY=0 it reads and folds the whole stream.
 *
 * The restarted process first serves one authorization on a short account (two events): a fresh process's first
 * request pays once for what any account would (its first database connections, code not compiled yet; 22–60 ms on
 * this machine, session 21), and that is printed on its own, so the long account's figure is its load.
 */
import { authHeaders, grantCredits, knobs, log, performance, type BenchRun } from './bench.harness';
import { preProduce, waitForLedgerIdle, type LedgerStage } from './ledger-throughput.bench';

export interface AccountLoadResult {
  streamEvents: number;
  /**
   * The account's first authorization after the restart, the process having served one on another account: its load
   * (read + fold) plus one HTTP round trip.
   */
  coldMs: number;
  /** The restarted process's very first authorization, on a 2-event account: what a fresh process pays once. */
  firstRequestMs: number;
  /** The next one, account cached: the HTTP round trip and the decision alone. */
  warmMs: number;
  /** The version of the account's snapshot when the ledger restarted (undefined: none, the whole stream is folded). */
  snapshotVersion?: number;
}

async function authorizeOnce(base: string, accountId: string): Promise<number> {
  const t0 = performance.now();
  const response = await fetch(`${base}/v1/accounts/${accountId}/authorizations`, { method: 'POST', headers: authHeaders, body: JSON.stringify({ amount: '0.01' }) });
  const ms = performance.now() - t0;
  if (response.status !== 200) throw new Error(`authorization on ${accountId}: ${response.status} ${await response.text()}`);
  return ms;
}

export async function measureAccountLoad(ctx: BenchRun, stage: LedgerStage): Promise<AccountLoadResult> {
  const streamEvents = knobs.streamEvents;
  const accountId = `long-stream-${ctx.id}`;
  const shortAccountId = `short-stream-${ctx.id}`;
  await grantCredits(stage.ledger.base, [accountId, shortAccountId], '100000');
  log(`account load: ${streamEvents} usage events for one account, then a cold ledger`);
  const producer = await ctx.producer();
  await preProduce(producer, stage.env.USAGE_EVENTS_TOPIC, [accountId], streamEvents, `long-${ctx.id}`);
  await waitForLedgerIdle(ctx, stage);
  // The worst case: the stream ends as far past its snapshot as it can (ACCOUNT_SNAPSHOT_EVERY − 1 events).
  const every = Number(stage.env.ACCOUNT_SNAPSHOT_EVERY ?? process.env.ACCOUNT_SNAPSHOT_EVERY ?? DEFAULT_SNAPSHOT_EVERY);
  const before = await versions(ctx, stage, accountId);
  if (every > 0 && before.snapshot !== undefined) {
    const extra = every - 1 - (before.stream - before.snapshot);
    if (extra > 0) {
      await preProduce(producer, stage.env.USAGE_EVENTS_TOPIC, [accountId], extra, `long-tail-${ctx.id}`);
      await waitForLedgerIdle(ctx, stage);
    }
  }
  const { stream, snapshot: snapshotVersion } = await versions(ctx, stage, accountId);
  if (!(stream >= streamEvents)) throw new Error(`the stream of ${accountId} has ${stream} events, expected ≥ ${streamEvents}`);
  await stage.ledger.kill();
  stage.ledger = await ctx.startService('ledger', stage.env);
  const firstRequestMs = await authorizeOnce(stage.ledger.base, shortAccountId);
  const coldMs = await authorizeOnce(stage.ledger.base, accountId);
  const warmMs = await authorizeOnce(stage.ledger.base, accountId);
  log(`  → the restarted process's first authorization (a 2-event account) ${firstRequestMs.toFixed(0)} ms; stream of ${stream} events, snapshot at ${snapshotVersion ?? 'none'}: first authorization ${coldMs.toFixed(0)} ms (cold), next ${warmMs.toFixed(1)} ms (cached)`);
  return { streamEvents: stream, coldMs, warmMs, firstRequestMs, snapshotVersion };
}

/** The ledger's default ACCOUNT_SNAPSHOT_EVERY (apps/ledger/src/config/ledger.config.ts). */
const DEFAULT_SNAPSHOT_EVERY = 200;

async function versions(ctx: BenchRun, stage: LedgerStage, accountId: string): Promise<{ stream: number; snapshot?: number }> {
  const { rows } = await ctx.pool.query(
    `select s.version as stream, (select version from "${stage.schema}".account_snapshots where stream_id = s.stream_id) as snapshot
     from "${stage.schema}".streams s where s.stream_id = $1`,
    [`account-${accountId}`],
  );
  return { stream: rows[0]?.stream ?? 0, snapshot: rows[0]?.snapshot ?? undefined };
}
