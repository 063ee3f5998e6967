/**
 * Single-event appends (what each HTTP command does: a grant, a purchase, a hold) on Tally's PostgreSQL event store
 * next to Emmett's (`@event-driven-io/emmett-postgresql`, installed apart in bench/peers), in the same run on the
 * same PostgreSQL: 1 and 8 callers, each appending one event at a time to its own streams with the expected
 * version, as the ledger does. Emmett's tables go to a schema of their own (search_path), dropped at cleanup.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { Pool } from 'pg';
import { PostgresEventStore, ensureSchema } from '@tally/event-store';
import { knobs, log, performance, type BenchRun } from './bench.harness';

/** The slice of Emmett's API the bench uses (its types live in bench/peers, outside the workspace's). */
interface EmmettStore {
  appendToStream(stream: string, events: { type: string; data: object }[], options?: { expectedStreamVersion?: bigint }): Promise<{ nextExpectedStreamVersion: bigint }>;
  close(): Promise<void>;
}
interface EmmettModule {
  getPostgreSQLEventStore(connectionString: string): EmmettStore;
}

export interface AppendFigure {
  callers: number;
  tallyPerSec: number;
  emmettPerSec: number;
}

const PAYLOAD = { grantId: 'g', bucketId: 'promotional:g', kind: 'promotional', amount: '10', source: 'api', grantedAt: '2026-12-01T00:00:00.000Z' };
const STREAMS_PER_CALLER = 20;
/** How many rounds each store's measurement is split into (see alternatingRates). */
const ROUNDS = 6;

/** Appends for `seconds` from `callers` concurrent loops; each loop owns its streams and their versions. */
async function appendsFor(callers: number, seconds: number, append: Append): Promise<{ appended: number; seconds: number }> {
  let appended = 0;
  const deadline = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: callers }, async (_, caller) => {
    const versions = new Array<number>(STREAMS_PER_CALLER).fill(0);
    const prefix = randomUUID();
    for (let i = 0; performance.now() < deadline; i += 1) {
      const k = i % STREAMS_PER_CALLER;
      await append(`account-${prefix}-${caller}-${k}`, versions[k]);
      versions[k] += 1;
      appended += 1;
    }
  }));
  return { appended, seconds: (performance.now() - t0) / 1000 };
}

type Append = (stream: string, version: number) => Promise<void>;

/**
 * The two stores in alternating rounds (Tally, Emmett, Emmett, Tally, …) of `seconds / ROUNDS` each, and each one's
 * rate over all its rounds: this machine's speed drifts by ±30% within a minute (PostgreSQL is shared), and one
 * store measured after the other took that drift for a difference between them (1.12× to 2.16× in two runs a minute
 * apart, session 29).
 */
async function alternatingRates(callers: number, seconds: number, tally: Append, emmett: Append): Promise<{ tallyPerSec: number; emmettPerSec: number; roundRatios: number[] }> {
  const totals = { tally: { appended: 0, seconds: 0 }, emmett: { appended: 0, seconds: 0 } };
  const roundRatios: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const order = round % 2 === 0 ? (['tally', 'emmett'] as const) : (['emmett', 'tally'] as const);
    const rates = { tally: 0, emmett: 0 };
    for (const store of order) {
      const measured = await appendsFor(callers, seconds / ROUNDS, store === 'tally' ? tally : emmett);
      totals[store].appended += measured.appended;
      totals[store].seconds += measured.seconds;
      rates[store] = measured.appended / measured.seconds;
    }
    roundRatios.push(rates.tally / rates.emmett);
  }
  return { tallyPerSec: totals.tally.appended / totals.tally.seconds, emmettPerSec: totals.emmett.appended / totals.emmett.seconds, roundRatios };
}

function loadEmmett(): EmmettModule {
  const path = resolve(__dirname, 'peers/node_modules/@event-driven-io/emmett-postgresql');
  try {
    return require(path) as EmmettModule; // a package outside the workspace, loaded at run time
  } catch (error) {
    throw new Error(`Emmett is not installed in bench/peers (bench/run.sh runs npm ci there): ${(error as Error).message}`);
  }
}

export async function measureSingleAppends(ctx: BenchRun): Promise<AppendFigure[]> {
  const seconds = Math.max(2, knobs.seconds / 2);
  const tallySchema = await ctx.createSchema('append');
  await ensureSchema(ctx.pool, tallySchema);
  const emmettSchema = await ctx.createSchema('emmett');
  const pool = new Pool({ connectionString: ctx.databaseUrl, max: 10 });
  const tally = new PostgresEventStore({ pool, schema: tallySchema, listen: false });
  const emmett = loadEmmett().getPostgreSQLEventStore(`${ctx.databaseUrl}${ctx.databaseUrl.includes('?') ? '&' : '?'}options=-c%20search_path%3D${emmettSchema}`);
  const figures: AppendFigure[] = [];
  try {
    const emmettAppend: Append = async (stream, version) => void (await emmett.appendToStream(stream, [{ type: 'CreditsGranted', data: PAYLOAD }], { expectedStreamVersion: BigInt(version) }));
    const tallyAppend: Append = async (stream, version) => void (await tally.append({ streamId: stream, expectedVersion: version, events: [{ id: randomUUID(), type: 'CreditsGranted', data: PAYLOAD }] }));
    // Warm-up: Emmett creates its tables on first use; both get their connections and plans.
    await appendsFor(2, 1, emmettAppend);
    await appendsFor(2, 1, tallyAppend);
    for (const callers of [1, 8]) {
      log(`single-event appends, ${callers} caller(s), ${seconds} s each in ${ROUNDS} alternating rounds: Tally's store and Emmett's`);
      const { tallyPerSec, emmettPerSec, roundRatios } = await alternatingRates(callers, seconds, tallyAppend, emmettAppend);
      const spread = `${Math.min(...roundRatios).toFixed(2)}–${Math.max(...roundRatios).toFixed(2)}× in its rounds`;
      log(`  → Tally ${tallyPerSec.toFixed(0)}/s, Emmett ${emmettPerSec.toFixed(0)}/s (${(tallyPerSec / emmettPerSec).toFixed(2)}×; ${spread})`);
      figures.push({ callers, tallyPerSec, emmettPerSec });
    }
  } finally {
    await emmett.close();
    await pool.end();
  }
  return figures;
}
