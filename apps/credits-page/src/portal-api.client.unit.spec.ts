import { PortalApi } from './portal-api.client';

const encoder = new TextEncoder();

/** The ledger's answer to GET /balance/stream with `body` as its stream. */
const eventStream = (body: ReadableStream<Uint8Array>): Response => new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });

/** A balance stream that sends its first bytes (a retry hint and a heartbeat) and then nothing, never closing. */
const silentStream = (): Response =>
  eventStream(new ReadableStream<Uint8Array>({ start: (controller) => controller.enqueue(encoder.encode('retry: 500\n\n: heartbeat\n\n')) }));

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not so within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Follows acct-1's balance through `fetchImpl` with a stall time of 200 ms, collecting the states it reports, until
 * `check` returns: the watch is then stopped (aborted, and its end awaited) whatever `check` did.
 */
async function watching(fetchImpl: typeof fetch, check: (states: readonly string[]) => Promise<void>): Promise<void> {
  const api = new PortalApi('token', 'http://ledger.test', fetchImpl, 200);
  const states: string[] = [];
  const stop = new AbortController();
  const done = api.watchBalance('acct-1', () => undefined, { signal: stop.signal, onState: (state) => void states.push(state) });
  try {
    await check(states);
  } finally {
    stop.abort();
    await done;
  }
}

describe('PortalApi.watchBalance', () => {
  it('given a stream that goes silent without closing (not even heartbeats), when the stall time passes, then it says reconnecting and opens it again', async () => {
    let opened = 0;
    const fetchImpl = (async () => {
      opened += 1;
      return silentStream();
    }) as typeof fetch;
    await watching(fetchImpl, async (states) => {
      await until(() => opened >= 2, 5_000);
      expect(states.slice(0, 3)).toEqual(['live', 'reconnecting', 'live']);
    });
  });

  it('given a stream that keeps sending heartbeats, then it stays live on one connection', async () => {
    let opened = 0;
    let beat: ReturnType<typeof setInterval> | undefined;
    const fetchImpl = (async (_input: unknown, init?: RequestInit) => {
      opened += 1;
      return eventStream(
        new ReadableStream<Uint8Array>({
          start(controller) {
            beat = setInterval(() => controller.enqueue(encoder.encode(': heartbeat\n\n')), 50);
            // As fetch does: aborting the request errors its body.
            init?.signal?.addEventListener('abort', () => (clearInterval(beat), controller.error(new Error('aborted'))), { once: true });
          },
          cancel() {
            clearInterval(beat);
          },
        }),
      );
    }) as typeof fetch;
    try {
      await watching(fetchImpl, async (states) => {
        await new Promise((resolve) => setTimeout(resolve, 1_000)); // five stall times, heartbeats every quarter of one
        expect({ opened, states }).toEqual({ opened: 1, states: ['live'] });
      });
    } finally {
      clearInterval(beat);
    }
  });

  it('given a stream opened again, then it names it by the same key each time, and another watch by another (the ledger drops a lost stream under its key)', async () => {
    const keys: (string | null)[] = [];
    const fetchImpl = (async (input: unknown) => {
      keys.push(new URL(String(input)).searchParams.get('streamKey'));
      return silentStream();
    }) as typeof fetch;
    await watching(fetchImpl, async () => {
      await until(() => keys.length >= 2, 5_000);
    });
    await watching(fetchImpl, async () => {
      await until(() => keys.length >= 3, 5_000);
    });
    expect(keys[0]).toMatch(/^[A-Za-z0-9_-]{16,64}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).toMatch(/^[A-Za-z0-9_-]{16,64}$/);
    expect(keys[2]).not.toBe(keys[0]);
  });
});

describe('PortalApi.usage', () => {
  it('given a ledger that does not know the page\'s time zone (400 naming tz), then it asks again in UTC days, and the answer says so', async () => {
    const asked: string[] = [];
    const fetchImpl = (async (input: unknown) => {
      const url = new URL(String(input));
      asked.push(url.searchParams.get('tz') ?? '');
      if (url.searchParams.get('tz') !== 'UTC') {
        return new Response(JSON.stringify({ code: 'VALIDATION_FAILED', message: 'The request is invalid.', details: [{ field: 'tz', reason: 'must be an IANA time zone' }] }), { status: 400 });
      }
      return new Response(JSON.stringify({ from: '2026-12-01T00:00:00.000Z', to: '2026-12-08T00:00:00.000Z', timeZone: 'UTC', totals: { credits: '0', requests: 0 }, byModel: [], byFeature: [], byDay: [] }));
    }) as typeof fetch;
    const usage = await new PortalApi('token', 'http://ledger.test', fetchImpl).usage('acct-1', { kind: 'custom', from: '2026-12-01', to: '2026-12-07' }, 'America/Ciudad_Juarez');
    expect(asked).toEqual(['America/Ciudad_Juarez', 'UTC']);
    expect(usage).toMatchObject({ timeZone: 'UTC', inUtcInstead: true });

    // Another 400 is not taken for the zone's.
    const other = (async () => new Response(JSON.stringify({ code: 'VALIDATION_FAILED', message: 'x', details: [{ field: 'from', reason: 'y' }] }), { status: 400 })) as typeof fetch;
    await expect(new PortalApi('token', 'http://ledger.test', other).usage('acct-1', { kind: '7d' }, 'Europe/Berlin')).rejects.toMatchObject({ status: 400, field: 'from' });
  });
});
