/**
 * What writing one event row costs PostgreSQL, by the form its JSON takes on the way in: the event store's own
 * statement (jsonb columns, the rows as one jsonb array parameter, as PostgresEventStore's insertEventsSql) next to
 * alternatives, in alternating rounds on one connection, each round's CPU read from the backend's /proc entry.
 * A diagnostic for docs/benchmarks.md (issue 17, session 31), not part of `npm run bench`:
 *
 *   node -r ts-node/register/transpile-only -r tsconfig-paths/register scripts/event-row-input.script.ts [rounds=3] [batches=300]
 *
 * (DATABASE_URL, default tally_test.) The rows are shaped like the ledger's UsageDebited (data ~490 bytes; metadata
 * ~320 bytes: the balance after the event, the command key, the schema version), 100 to a statement, each in a stream
 * of its own, into the event store's own tables (eventStoreUpSql), in schemas of their own dropped at the end; the
 * variants' tables are that DDL with json columns or a C collation.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { eventStoreUpSql } from '@tally/event-store';
import { jsonbParameter } from '@tally/shared';
import { testDatabaseUrl } from '@tally/testing';
import { cpuSeconds } from '../bench/bench.harness';

const ROUNDS = Number(process.argv[2] ?? 3);
const BATCHES = Number(process.argv[3] ?? 300);
const ROWS = 100;
const SCHEMA = `event_row_input_${process.pid}`;
const BALANCE_KEYS = ['held', 'planId', 'cycleId', 'cycleEnd', 'allowance', 'available', 'overdraft', 'purchased', 'unlimited', 'allocation', 'promotional', 'usedThisCycle'];

type Metadata = { commandKey: string; balanceAfter: Record<string, unknown>; schemaVersion: number };
type Row = { streamId: string; id: string; data: unknown; metadata: Metadata };

function usageDebited(n: number): Row {
  const at = new Date(Date.UTC(2026, 11, 1) + n).toISOString();
  const amount = '0.000285';
  const data = {
    amount, models: ['gpt-4o-mini'], feature: 'chat', usageId: `bench-${n}`, metadata: {}, debitedAt: at, overdraft: '0', occurredAt: at,
    pricing: { lines: [{ model: 'gpt-4o-mini', amount, feature: 'chat', inputTokens: 900, outputTokens: 250 }], rateCardVersion: '2026-11-01' },
    perBucket: [{ kind: 'promotional', amount, bucketId: `grant:bench-grant-acct-${n % 1000}` }],
  };
  const balanceAfter = {
    held: '0', planId: null, cycleId: null, cycleEnd: null, allowance: '0', available: '999.998155', overdraft: '0', purchased: '0', unlimited: false,
    allocation: '0', promotional: '999.998155', usedThisCycle: '0.001845',
  };
  return { streamId: `account-${n}`, id: randomUUID(), data, metadata: { commandKey: `usage:bench-${n}`, balanceAfter, schemaVersion: 2 } };
}

/** The event store's DDL in `schema`, rewritten by `edit`, which must change it (so a drift in the DDL shows here). */
function tablesSql(schema: string, edit?: (sql: string) => string): string[] {
  const original = eventStoreUpSql(schema);
  if (!edit) return original;
  const edited = original.map(edit);
  if (edited.every((sql, i) => sql === original[i])) throw new Error(`the edit for ${schema} no longer applies to eventStoreUpSql`);
  return edited;
}

const TABLES = {
  jsonb: tablesSql(SCHEMA),
  json: tablesSql(`${SCHEMA}_json`, (sql) => sql.replaceAll('jsonb', 'json')),
  collateC: tablesSql(`${SCHEMA}_collate_c`, (sql) => sql.replace('stream_id text NOT NULL', 'stream_id text COLLATE "C" NOT NULL')),
};
const EVENTS = { jsonb: `"${SCHEMA}".events`, json: `"${SCHEMA}_json".events`, collateC: `"${SCHEMA}_collate_c".events` };

const asArrays = (rows: Row[], metadata: (m: Metadata) => unknown = (m) => m) => rows.map((r) => [r.streamId, 1, r.id, 'UsageDebited', r.data, metadata(r.metadata)]);
const columns = '(stream_id, version, event_id, type, data, metadata)';
const fromJsonbArray = (table: string) =>
  `INSERT INTO ${table} ${columns} SELECT e.ev->>0, (e.ev->>1)::int, (e.ev->>2)::uuid, e.ev->>3, e.ev->4, e.ev->5
     FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(ev, ord) ORDER BY e.ord`;

type Variant = { sql: string; values: (rows: Row[]) => unknown[] };

const VARIANTS: Record<string, Variant> = {
  'as stored (jsonb, one jsonb array parameter)': { sql: fromJsonbArray(EVENTS.jsonb), values: (rows) => [jsonbParameter(asArrays(rows))] },
  'json columns, one json array parameter': {
    sql: fromJsonbArray(EVENTS.json).replace('jsonb_array_elements($1::jsonb)', 'json_array_elements($1::json)'),
    values: (rows) => [JSON.stringify(asArrays(rows))],
  },
  'json columns, unnest of six arrays': {
    sql: `INSERT INTO ${EVENTS.json} ${columns} SELECT * FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[], $5::json[], $6::json[])`,
    values: (rows) => [rows.map((r) => r.streamId), rows.map(() => 1), rows.map((r) => r.id), rows.map(() => 'UsageDebited'), rows.map((r) => JSON.stringify(r.data)), rows.map((r) => JSON.stringify(r.metadata))],
  },
  'as stored, stream_id COLLATE "C"': { sql: fromJsonbArray(EVENTS.collateC), values: (rows) => [jsonbParameter(asArrays(rows))] },
  'as stored, the balance as an array of its 12 values': {
    sql: fromJsonbArray(EVENTS.jsonb),
    values: (rows) => [jsonbParameter(asArrays(rows, (m) => ({ ...m, balanceAfter: BALANCE_KEYS.map((k) => m.balanceAfter[k]) })))],
  },
  'as stored, without the balance in the metadata': {
    sql: fromJsonbArray(EVENTS.jsonb),
    values: (rows) => [jsonbParameter(asArrays(rows, ({ commandKey, schemaVersion }) => ({ commandKey, schemaVersion })))],
  },
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const client = new Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  try {
    const { rows: [{ pid }] } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const backendCpu = () => {
      const seconds = cpuSeconds(pid);
      if (seconds === undefined) throw new Error(`no /proc entry for PostgreSQL backend ${pid}: run this on the database's machine`);
      return seconds;
    };
    for (const sql of Object.values(TABLES).flat()) await client.query(sql);
    let n = 0;
    const names = Object.keys(VARIANTS);
    const perRow = new Map(names.map((name) => [name, [] as number[]]));
    for (let round = 0; round < ROUNDS; round++) {
      // Alternating order: each variant goes first in some round and last in another.
      for (const name of round % 2 === 0 ? names : [...names].reverse()) {
        const variant = VARIANTS[name];
        const query = { name: `v${names.indexOf(name)}`, text: variant.sql };
        const parameters = Array.from({ length: BATCHES }, () => variant.values(Array.from({ length: ROWS }, () => usageDebited(n++))));
        const before = backendCpu();
        for (const values of parameters) {
          await client.query('BEGIN');
          await client.query({ ...query, values });
          await client.query('COMMIT');
        }
        perRow.get(name)?.push(((backendCpu() - before) * 1e6) / (BATCHES * ROWS));
      }
    }
    for (const [name, micros] of perRow) console.log(`${median(micros).toFixed(1).padStart(6)} µs  ${name}   (rounds: ${micros.map((m) => m.toFixed(1)).join(' / ')})`);
  } finally {
    for (const schema of [SCHEMA, `${SCHEMA}_json`, `${SCHEMA}_collate_c`]) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await client.end();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
