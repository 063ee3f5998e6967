'use strict';
// What writing one event row costs PostgreSQL, by the form its JSON takes on the way in: the event store's own
// statement (jsonb columns, the rows as one jsonb array parameter, as PostgresEventStore.insertEventsSql) next to
// alternatives, in alternating rounds on one connection, each round's CPU read from the backend's /proc entry.
// A diagnostic for docs/benchmarks.md (issue 17, session 31), not part of `npm run bench`:
//
//   node scripts/event-row-input.cjs [rounds=3] [batches per round=300]     (DATABASE_URL, default tally_test)
//
// The rows are shaped like the ledger's UsageDebited (data ~490 bytes; metadata ~320 bytes: the balance after the
// event, the command key, the schema version), 100 to a statement, each in a stream of its own, into a table with the
// event store's columns and indexes (created in a schema of its own, dropped at the end).
const { Client } = require('pg');
const { readFileSync } = require('node:fs');
const { randomUUID } = require('node:crypto');

const ROUNDS = Number(process.argv[2] ?? 3);
const BATCHES = Number(process.argv[3] ?? 300);
const ROWS = 100;
const SCHEMA = `event_row_input_${process.pid}`;
const BALANCE_KEYS = ['held', 'planId', 'cycleId', 'cycleEnd', 'allowance', 'available', 'overdraft', 'purchased', 'unlimited', 'allocation', 'promotional', 'usedThisCycle'];

function usageDebited(n) {
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

/** jsonb in binary format: version 1, then the text (what @tally/shared's jsonbParameter sends). */
const jsonb = (value) => Buffer.concat([Buffer.from([1]), Buffer.from(JSON.stringify(value))]);
const asArrays = (rows, metadata = (m) => m) => rows.map((r) => [r.streamId, 1, r.id, 'UsageDebited', r.data, metadata(r.metadata)]);
const columns = '(stream_id, version, event_id, type, data, metadata)';
const fromJsonbArray = (table) =>
  `INSERT INTO ${table} ${columns} SELECT e.ev->>0, (e.ev->>1)::int, (e.ev->>2)::uuid, e.ev->>3, e.ev->4, e.ev->5
     FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(ev, ord) ORDER BY e.ord`;

const VARIANTS = {
  'as stored (jsonb, one jsonb array parameter)': { table: 'e_jsonb', sql: fromJsonbArray, values: (rows) => [jsonb(asArrays(rows))] },
  'json columns, one json array parameter': {
    table: 'e_json',
    sql: (t) => fromJsonbArray(t).replace('jsonb_array_elements($1::jsonb)', 'json_array_elements($1::json)'),
    values: (rows) => [JSON.stringify(asArrays(rows))],
  },
  'json columns, unnest of six arrays': {
    table: 'e_json',
    sql: (t) => `INSERT INTO ${t} ${columns} SELECT * FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[], $5::json[], $6::json[])`,
    values: (rows) => [rows.map((r) => r.streamId), rows.map(() => 1), rows.map((r) => r.id), rows.map(() => 'UsageDebited'), rows.map((r) => JSON.stringify(r.data)), rows.map((r) => JSON.stringify(r.metadata))],
  },
  'as stored, stream_id COLLATE "C"': { table: 'e_collate_c', sql: fromJsonbArray, values: (rows) => [jsonb(asArrays(rows))] },
  'as stored, the balance as an array of its 12 values': {
    table: 'e_jsonb',
    sql: fromJsonbArray,
    values: (rows) => [jsonb(asArrays(rows, (m) => ({ ...m, balanceAfter: BALANCE_KEYS.map((k) => m.balanceAfter[k]) })))],
  },
  'as stored, without the balance in the metadata': {
    table: 'e_jsonb',
    sql: fromJsonbArray,
    values: (rows) => [jsonb(asArrays(rows, ({ balanceAfter, ...rest }) => rest))],
  },
};

/** user + system CPU of a process, in µs (clock ticks of 10 ms). */
function cpuMicros(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const client = new Client({ connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tally_test' });
  await client.connect();
  try {
    const { rows: [{ pid }] } = await client.query('SELECT pg_backend_pid() AS pid');
    await client.query(`CREATE SCHEMA ${SCHEMA}`);
    for (const [table, type, collate] of [['e_jsonb', 'jsonb', ''], ['e_json', 'json', ''], ['e_collate_c', 'jsonb', ' COLLATE "C"']]) {
      await client.query(`CREATE TABLE ${SCHEMA}.${table} (
        global_position bigserial NOT NULL, transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(), stream_id text${collate} NOT NULL,
        version integer NOT NULL, event_id uuid NOT NULL, type text NOT NULL, data ${type} NOT NULL, metadata ${type} NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (stream_id, version), UNIQUE (event_id))`);
      await client.query(`CREATE INDEX ON ${SCHEMA}.${table} (transaction_id, global_position)`);
    }
    let n = 0;
    const names = Object.keys(VARIANTS);
    const perRow = new Map(names.map((name) => [name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      // Alternating order: each variant goes first in some round and last in another.
      for (const name of round % 2 === 0 ? names : [...names].reverse()) {
        const variant = VARIANTS[name];
        const sql = { name: `v${names.indexOf(name)}`, text: variant.sql(`${SCHEMA}.${variant.table}`) };
        const batches = Array.from({ length: BATCHES }, () => Array.from({ length: ROWS }, () => usageDebited(n++)));
        const parameters = batches.map((rows) => variant.values(rows));
        const before = cpuMicros(pid);
        for (const values of parameters) {
          await client.query('BEGIN');
          await client.query({ ...sql, values });
          await client.query('COMMIT');
        }
        perRow.get(name).push((cpuMicros(pid) - before) / (BATCHES * ROWS));
      }
    }
    for (const [name, micros] of perRow) console.log(`${median(micros).toFixed(1).padStart(6)} µs  ${name}   (rounds: ${micros.map((m) => m.toFixed(1)).join(' / ')})`);
  } finally {
    await client.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`).catch(() => undefined);
    await client.end();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
