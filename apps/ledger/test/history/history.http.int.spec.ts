import { get, type IncomingMessage } from 'node:http';
import { Module, type INestApplication } from '@nestjs/common';
import type { Envelope } from '@tally/contracts';
import { parseCredits } from '@tally/money';
import { bootstrapHttpApp, hashApiKey } from '@tally/shared';
import { BALANCE_CHANGED_CHANNEL, changedAccounts } from '@tally/ledger-read-models';
import { createTestSchema, freePort, waitFor } from '@tally/testing';
import type { Pool } from 'pg';
import { LedgerConfig } from '../../src/config/ledger.config';
import { PG_POOL } from '../../src/database/tokens.provider';
import { BalanceNotifications } from '../../src/read-models/balance/balance-notifications.service';
import { LEDGER_STATUS_BY_CODE } from '../../src/ledger.errors';
import { HISTORY_STATUS_BY_CODE } from '../../src/read-models/history/history.errors';
import { HISTORY_CONTROLLERS, HISTORY_PROVIDERS } from '../../src/read-models/history/history.provider';
import { USAGE_CSV_COLUMNS, UsageExportService } from '../../src/read-models/history/usage-export.service';
import { AccountStream, batches } from './account-stream.fixtures';
import { applyBatch, migrateReadModels, testConfig, testPool } from './read-model.fixtures';

const API_KEY = 'history-test-key';
const OTHER_KEY = 'usage-only-key';
const USAGE_EVENTS = 10_000;

/** RFC 4180 lines → fields (quoted fields may hold commas, quotes and newlines). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 1; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n') { row.push(field); rows.push(row); row = []; field = ''; }
    else field += c;
  }
  if (field !== '' || row.length > 0) { row.push(field); rows.push(row); }
  return rows;
}

interface SseEvent { event?: string; id?: string; data?: string }

/** A minimal server-sent events reader over node:http. */
function openSse(url: string, key: string): Promise<{ response: IncomingMessage; events: SseEvent[]; close: () => void }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' } }, (response) => {
      const events: SseEvent[] = [];
      let buffer = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event: SseEvent = {};
          for (const line of block.split('\n')) {
            const match = /^(event|id|data): (.*)$/.exec(line);
            if (match) event[match[1] as keyof SseEvent] = match[2];
          }
          if (event.data) events.push(event);
        }
      });
      response.on('error', () => undefined);
      resolve({ response, events, close: () => request.destroy() });
    });
    request.on('error', reject);
  });
}

describe('history HTTP API', () => {
  let pool: Pool;
  let schema: { schema: string; drop: () => Promise<void> };
  let app: INestApplication;
  let base: string;
  const alice = new AccountStream('alice', '2025-03-01T00:00:00.000Z', false);
  let debited = 0n;

  const call = (path: string, key = API_KEY) => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } });

  beforeAll(async () => {
    pool = testPool();
    schema = await createTestSchema('ledger_history_http');
    await migrateReadModels(schema.schema);
    const events: Envelope<object>[] = [
      alice.opened(),
      alice.cycleStarted('c-03', '2025-03-01T00:00:00.000Z', '2025-04-01T00:00:00.000Z', '1000'),
      alice.granted('allowance', '1000', 'allowance-03'),
    ];
    for (let i = 0; i < USAGE_EVENTS; i += 1) {
      const amount = `0.${String((i * 7919) % 1_000_000).padStart(6, '0')}`;
      debited += parseCredits(amount);
      const occurredAt = new Date(Date.parse('2025-03-02T00:00:00.000Z') + i * 60_000 + (i % 3)).toISOString();
      // Every third one shares its timestamp with the next, so the export's keyset tie-break is exercised.
      const at = i % 3 === 1 ? new Date(Date.parse(occurredAt) - 60_000 - 1).toISOString() : occurredAt;
      events.push(alice.usage({
        usageId: `u-${String(i).padStart(5, '0')}`,
        occurredAt: at,
        lines: [{ model: i % 10 === 0 ? 'llama,"70b"' : 'gpt-4o', amount, inputTokens: i, outputTokens: 2 * i }],
      }));
    }
    for (const batch of batches(events, 1000)) await applyBatch(pool, schema.schema, batch);

    const port = await freePort();
    const config = testConfig(schema.schema, {
      PORT: port,
      LOG_LEVEL: 'silent',
      BALANCE_STREAMS_MAX: 3,
      API_KEYS: JSON.stringify([
        { name: 'reader', sha256: hashApiKey(API_KEY), scopes: ['accounts:read'] },
        { name: 'ingest', sha256: hashApiKey(OTHER_KEY), scopes: ['usage:write'] },
      ]),
    });
    @Module({
      controllers: HISTORY_CONTROLLERS,
      providers: [...HISTORY_PROVIDERS, { provide: PG_POOL, useValue: pool }, { provide: LedgerConfig, useValue: config }],
    })
    class HistoryTestModule {}
    app = await bootstrapHttpApp(HistoryTestModule, { service: 'ledger-history-test', title: 'test', config, statusByCode: { ...LEDGER_STATUS_BY_CODE, ...HISTORY_STATUS_BY_CODE }, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await app?.close();
    await pool.end();
    await schema.drop();
  });

  it('names the export after the first and the last day the range holds (its end is exclusive)', async () => {
    const month = await call('/v1/accounts/alice/usage/export?from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:00Z');
    expect(month.status).toBe(200);
    expect(month.headers.get('content-disposition')).toBe('attachment; filename="usage-alice-2025-03-01-2025-03-31.csv"');
    await month.text();
    // A range ending within a day holds that day.
    const partial = await call('/v1/accounts/alice/usage/export?from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00.001Z');
    expect(partial.headers.get('content-disposition')).toBe('attachment; filename="usage-alice-2025-03-01-2025-03-02.csv"');
    await partial.text();
  });

  it('exports every usage event as CSV whose credits add up exactly to the debits', async () => {
    const response = await call('/v1/accounts/alice/usage/export?from=2025-01-01T00:00:00Z');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(response.headers.get('content-disposition')).toMatch(/^attachment; filename="usage-alice-2025-01-01-\d{4}-\d{2}-\d{2}\.csv"$/);
    const text = await response.text();
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n').length - 1).toBe(USAGE_EVENTS + 1);
    const rows = parseCsv(text);
    expect(rows[0]).toEqual([...USAGE_CSV_COLUMNS]);
    const body = rows.slice(1);
    expect(body).toHaveLength(USAGE_EVENTS);
    const credits = USAGE_CSV_COLUMNS.indexOf('credits');
    expect(body.reduce((sum, row) => sum + parseCredits(row[credits]), 0n)).toBe(debited);
    expect(new Set(body.map((row) => row[1])).size).toBe(USAGE_EVENTS);
    const sorted = [...body].sort((a, b) => (a[0] === b[0] ? a[1].localeCompare(b[1]) : a[0].localeCompare(b[0])));
    expect(body.map((row) => row[1])).toEqual(sorted.map((row) => row[1]));
    expect(body.find((row) => row[1] === 'u-00010')).toEqual([
      '2025-03-02T00:09:00.000000Z', 'u-00010', 'chat', 'llama,"70b"', '10', '20', '0', '', '0', '0.07919', '2025-03',
    ]);
  });

  it('pages the export on exact microsecond timestamps', async () => {
    const micro = new AccountStream('micro', '2025-03-01T00:00:00.000Z', false);
    const events = [micro.opened()];
    for (let i = 0; i < 25; i += 1) {
      // Several events inside one millisecond: a keyset rounded to milliseconds would skip or repeat them.
      events.push(micro.usage({ usageId: `m-${String(24 - i).padStart(2, '0')}`, occurredAt: `2025-03-05T00:00:00.000${String(Math.floor(i / 2)).padStart(3, '0')}Z`, lines: [{ model: 'm', amount: '1' }] }));
    }
    await applyBatch(pool, schema.schema, events);
    const exporter = app.get(UsageExportService);
    exporter.pageSize = 4;
    try {
      const rows = parseCsv(await (await call('/v1/accounts/micro/usage/export?from=2025-01-01T00:00:00Z')).text()).slice(1);
      expect(rows.map((row) => row[1]).sort()).toEqual(Array.from({ length: 25 }, (_, i) => `m-${String(i).padStart(2, '0')}`));
      expect(rows[0][0]).toBe('2025-03-05T00:00:00.000000Z');
      expect(rows[24][0]).toBe('2025-03-05T00:00:00.000012Z');
    } finally {
      exporter.pageSize = 5_000;
    }
  });

  it('exports the last 30 days when no range is given, like the usage summary', async () => {
    const recent = new AccountStream('recent', new Date(Date.now() - 60 * 86_400_000).toISOString(), false);
    const day = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString();
    await applyBatch(pool, schema.schema, [
      recent.opened(),
      recent.usage({ usageId: 'r-old', occurredAt: day(31), lines: [{ model: 'm', amount: '1' }] }),
      recent.usage({ usageId: 'r-new', occurredAt: day(29), lines: [{ model: 'm', amount: '2' }] }),
    ]);
    const response = await call('/v1/accounts/recent/usage/export');
    expect(response.headers.get('content-disposition')).toContain(`usage-recent-${day(30).slice(0, 10)}-${day(0).slice(0, 10)}.csv`);
    expect(parseCsv(await response.text()).slice(1).map((row) => row[1])).toEqual(['r-new']);
  });

  it('neutralises cells a spreadsheet would run as a formula (ids may start with - or @)', async () => {
    const sheet = new AccountStream('sheet', '2025-03-01T00:00:00.000Z', false);
    await applyBatch(pool, schema.schema, [
      sheet.opened(),
      sheet.usage({ usageId: '-1-1', occurredAt: '2025-03-03T00:00:00.000Z', lines: [{ model: '=cmd', amount: '1' }] }),
      sheet.usage({ usageId: '@home:u1', occurredAt: '2025-03-03T00:00:01.000Z', lines: [{ model: 'gpt-4o', amount: '2' }] }),
    ]);
    const rows = parseCsv(await (await call('/v1/accounts/sheet/usage/export?from=2025-03-01T00:00:00Z')).text()).slice(1);
    expect(rows.map((row) => [row[1], row[3], row[9]])).toEqual([["'-1-1", "'=cmd", '1'], ["'@home:u1", 'gpt-4o', '2']]);
  });

  it('names the export after its first and last day in the zone asked for, and takes date-only from/to as that zone\'s midnights', async () => {
    const response = await call('/v1/accounts/alice/usage/export?from=2025-03-02&to=2025-03-03&tz=America/New_York');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="usage-alice-2025-03-02-2025-03-02.csv"');
    const rows = parseCsv(await response.text()).slice(1);
    expect(rows.length).toBeGreaterThan(0);
    // New York's 2 March is 05:00 UTC on the 2nd to 05:00 UTC on the 3rd (EST, UTC−5).
    expect(rows.every((row) => row[0] >= '2025-03-02T05:00:00' && row[0] < '2025-03-03T05:00:00')).toBe(true);
    expect(rows.some((row) => row[0] < '2025-03-02T06:00:00')).toBe(true);
  });

  it('limits the export to from/to', async () => {
    const response = await call('/v1/accounts/alice/usage/export?from=2025-03-02T00:00:00Z&to=2025-03-02T01:00:00Z');
    const rows = parseCsv(await response.text());
    expect(rows.length - 1).toBe(60);
  });

  it('summarises usage and pages transactions over HTTP', async () => {
    const usage = await call('/v1/accounts/alice/usage?period=cycle');
    expect(usage.status).toBe(200);
    const summary = (await usage.json()) as { totals: { credits: string; requests: number }; byModel: { model: string; requests: number }[] };
    expect(summary.totals).toEqual({ credits: (await import('@tally/money')).formatCredits(debited), requests: USAGE_EVENTS });
    expect(summary.byModel.map((m) => [m.model, m.requests])).toEqual([['gpt-4o', 9000], ['llama,"70b"', 1000]]);

    const first = (await (await call('/v1/accounts/alice/transactions?limit=2&type=UsageDebited')).json()) as { items: { streamVersion: number }[]; nextCursor: string };
    expect(first.items.map((item) => item.streamVersion)).toEqual([USAGE_EVENTS + 3, USAGE_EVENTS + 2]);
    const second = (await (await call(`/v1/accounts/alice/transactions?limit=2&type=UsageDebited&cursor=${first.nextCursor}`)).json()) as { items: { streamVersion: number }[] };
    expect(second.items.map((item) => item.streamVersion)).toEqual([USAGE_EVENTS + 1, USAGE_EVENTS]);
  });

  it('answers 400 with the field, 404 for unknown accounts, 401/403 without the right key', async () => {
    const badPeriod = await call('/v1/accounts/alice/usage?period=1y');
    expect(badPeriod.status).toBe(400);
    expect(await badPeriod.json()).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'period' }] });
    // A time zone that is not one (an offset, a made-up name, one PostgreSQL would not take) is the client's error, never a 500.
    for (const tz of ['Mars/Olympus_Mons', '%2B09:00', 'x'.repeat(65)]) {
      for (const path of ['/usage', '/usage/export']) {
        const badZone = await call(`/v1/accounts/alice${path}?tz=${tz}`);
        expect([path, tz, badZone.status, await badZone.json()]).toMatchObject([path, tz, 400, { code: 'VALIDATION_FAILED', details: [{ field: 'tz' }] }]);
      }
    }
    const unknownParam = await call('/v1/accounts/alice/transactions?sort=asc');
    expect(unknownParam.status).toBe(400);
    const badCursor = await call('/v1/accounts/alice/transactions?cursor=nope');
    expect(await badCursor.json()).toMatchObject({ details: [{ field: 'cursor' }] });
    // A reversed range is refused the same way by the usage summary and the transaction history.
    for (const path of ['/usage', '/transactions']) {
      const reversed = await call(`/v1/accounts/alice${path}?from=2025-03-02&to=2025-03-01`);
      expect([path, reversed.status, await reversed.json()]).toMatchObject([path, 400, { details: [{ field: 'from' }] }]);
    }
    const badId = await call('/v1/accounts/bad%20id/usage');
    expect(badId.status).toBe(400);
    expect(await badId.json()).toMatchObject({ details: [{ field: 'accountId' }] });
    for (const path of ['/usage', '/transactions', '/usage/export', '/balance/stream']) {
      const missing = await call(`/v1/accounts/ghost${path}`);
      expect([path, missing.status]).toEqual([path, 404]);
      expect(await missing.json()).toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    }
    expect((await call('/v1/accounts/alice/usage', 'wrong')).status).toBe(401);
    expect((await call('/v1/accounts/alice/usage', OTHER_KEY)).status).toBe(403);
  });

  it('streams the balance, then the new balance after each change, and cleans up on close', async () => {
    const notifications = app.get(BalanceNotifications);
    const sse = await openSse(`${base}/v1/accounts/alice/balance/stream`, API_KEY);
    try {
      expect(sse.response.statusCode).toBe(200);
      expect(sse.response.headers['content-type']).toMatch(/^text\/event-stream/);
      await waitFor(() => sse.events.length >= 1);
      const initial = JSON.parse(sse.events[0].data as string) as { streamVersion: number; available: string };
      expect(initial.streamVersion).toBe(USAGE_EVENTS + 3);
      expect(sse.events[0]).toMatchObject({ event: 'balance', id: String(USAGE_EVENTS + 3) });

      const grants = [alice.granted('purchased', '500', 'pack-1'), alice.granted('promotional', '7.25', 'promo-1')];
      await applyBatch(pool, schema.schema, grants);
      await waitFor(() => sse.events.length >= 2);
      const next = JSON.parse(sse.events[sse.events.length - 1].data as string) as { streamVersion: number; available: string; purchased: string };
      expect(next.streamVersion).toBe(USAGE_EVENTS + 5);
      expect(parseCredits(next.available) - parseCredits(initial.available)).toBe(parseCredits('507.25'));
      expect(next.purchased).toBe('500');
      // A redelivery changes nothing, so it pushes nothing: the next frame after it is the next change's.
      const count = sse.events.length;
      await applyBatch(pool, schema.schema, grants);
      await applyBatch(pool, schema.schema, [alice.granted('promotional', '1', 'promo-after-redelivery')]);
      await waitFor(() => sse.events.length >= count + 1);
      expect(sse.events.slice(count).map((event) => (JSON.parse(event.data as string) as { streamVersion: number }).streamVersion)).toEqual([USAGE_EVENTS + 6]);
    } finally {
      sse.close();
    }
    await waitFor(() => notifications.subscriberCount() === 0);
  });

  it('pushes to every followed account of a batch that moves more balances than one notification names', async () => {
    // 150 accounts in one transaction: three notifications of up to 60 accounts; the followed ones in the second and third.
    const crowd = Array.from({ length: 150 }, (_, i) => new AccountStream(`crowd-${String(i).padStart(3, '0')}`, '2025-03-01T00:00:00.000Z', false));
    await applyBatch(pool, schema.schema, crowd.flatMap((account) => [account.opened(), account.granted('purchased', '10', `${account.accountId}-pack`)]));
    const followed = [crowd[75], crowd[149]];
    const streams = await Promise.all(followed.map((account) => openSse(`${base}/v1/accounts/${account.accountId}/balance/stream`, API_KEY)));
    const listener = await pool.connect();
    const payloads: string[] = [];
    try {
      listener.on('notification', (message) => payloads.push(message.payload ?? ''));
      await listener.query(`LISTEN ${BALANCE_CHANGED_CHANNEL}`);
      await waitFor(() => streams.every((sse) => sse.events.length >= 1));
      await applyBatch(pool, schema.schema, crowd.map((account) => account.granted('promotional', '1', `${account.accountId}-promo`)));
      await waitFor(() => streams.every((sse) => sse.events.length >= 2));
      await waitFor(() => payloads.length >= 3);
      expect(payloads.map((payload) => changedAccounts(payload).length).sort((a, b) => a - b)).toEqual([30, 60, 60]);
      expect(payloads.flatMap(changedAccounts).sort()).toEqual(crowd.map((account) => account.accountId));
      for (const [index, sse] of streams.entries()) {
        const latest = JSON.parse(sse.events[sse.events.length - 1].data as string) as { streamVersion: number; available: string };
        expect(latest).toMatchObject({ streamVersion: followed[index].streamVersion, available: '11' });
      }
    } finally {
      for (const sse of streams) sse.close();
      await listener.query(`UNLISTEN ${BALANCE_CHANGED_CHANNEL}`);
      listener.release();
    }
  });

  it('refuses a stream past BALANCE_STREAMS_MAX of every caller with 503 STREAMS_AT_CAPACITY and Retry-After 5, and takes one again once a stream closed', async () => {
    const notifications = app.get(BalanceNotifications);
    await waitFor(() => notifications.subscriberCount() === 0); // the streams of the tests before have closed
    const streams = await Promise.all([0, 1, 2].map(() => openSse(`${base}/v1/accounts/alice/balance/stream`, API_KEY)));
    try {
      await waitFor(() => streams.every((sse) => sse.events.length >= 1));
      const refused = await call('/v1/accounts/alice/balance/stream');
      expect([refused.status, refused.headers.get('retry-after'), await refused.json()]).toMatchObject([503, '5', { code: 'STREAMS_AT_CAPACITY', details: { limit: 3 } }]);
      streams.pop()?.close();
      await waitFor(() => notifications.subscriberCount() === 2);
      const again = await openSse(`${base}/v1/accounts/alice/balance/stream`, API_KEY);
      streams.push(again);
      expect(again.response.statusCode).toBe(200);
    } finally {
      for (const sse of streams) sse.close();
    }
    await waitFor(() => notifications.subscriberCount() === 0);
  });
});
