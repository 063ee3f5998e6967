/**
 * The cost of a long account stream: one account receives `BENCH_STREAM_EVENTS` usage events (100,000 by default,
 * through the ledger as any usage), then the ledger restarts (a cold account cache, as after a deploy) and the first
 * authorization on that account has to load it; the second finds it cached. Issue 17's target is ≤ 50 ms for a
 * 100,000-event stream, which needs snapshots; without them the load reads and folds the whole stream.
 */
import { authHeaders, grantCredits, knobs, log, performance, type BenchRun } from './bench.harness';
import { preProduce, waitForLedgerIdle, type LedgerStage } from './ledger-throughput.bench';

export interface AccountLoadResult {
  streamEvents: number;
  /** The first authorization after the restart: the account's load (read + fold) plus one HTTP round trip. */
  coldMs: number;
  /** The next one, account cached: the HTTP round trip and the decision alone. */
  warmMs: number;
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
  await grantCredits(stage.ledger.base, [accountId], '100000');
  log(`account load: ${streamEvents} usage events for one account, then a cold ledger`);
  const producer = await ctx.producer();
  await preProduce(producer, stage.env.USAGE_EVENTS_TOPIC, [accountId], streamEvents, `long-${ctx.id}`);
  await waitForLedgerIdle(ctx, stage);
  const { rows } = await ctx.pool.query(`select version from "${stage.schema}".streams where stream_id = $1`, [`account-${accountId}`]);
  if (!(rows[0]?.version >= streamEvents)) throw new Error(`the stream of ${accountId} has ${rows[0]?.version} events, expected ≥ ${streamEvents}`);
  await stage.ledger.kill();
  stage.ledger = await ctx.startService('ledger', stage.env);
  const coldMs = await authorizeOnce(stage.ledger.base, accountId);
  const warmMs = await authorizeOnce(stage.ledger.base, accountId);
  log(`  → stream of ${rows[0].version} events: first authorization ${coldMs.toFixed(0)} ms (cold), next ${warmMs.toFixed(1)} ms (cached)`);
  return { streamEvents: rows[0].version as number, coldMs, warmMs };
}
