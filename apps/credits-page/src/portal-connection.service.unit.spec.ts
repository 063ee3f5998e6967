import { PortalApi } from './portal-api.client';
import { SharedConnections, type ConnectionSnapshot } from './portal-connection.service';

const encoder = new TextEncoder();
const json = (body: unknown): Response => new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
const balance = { accountId: 'acct-1', available: '7', byKind: { allowance: '7', promotional: '0', purchased: '0' }, held: '0', overdraft: '0', allocation: '10', usedThisCycle: '3', unlimited: false, asOfVersion: 4 };

/**
 * A ledger behind fetch: the session, the balance, and a balance stream that sends a heartbeat and stays open until
 * its request is aborted (as fetch does, the abort errors its body). Counts the requests by path and the streams open.
 */
function fakeLedger() {
  const requests: string[] = [];
  let openStreams = 0;
  const fetchImpl = (async (input: unknown, init?: RequestInit) => {
    const path = new URL(String(input)).pathname;
    requests.push(path);
    if (path === '/v1/portal/session') return json({ accountId: 'acct-1', scopes: [], expiresAt: '2099-01-01T00:00:00Z' });
    if (path.endsWith('/balance')) return json(balance);
    openStreams += 1;
    return new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(encoder.encode(': heartbeat\n\n'));
          init?.signal?.addEventListener('abort', () => ((openStreams -= 1), controller.error(new Error('aborted'))), { once: true });
        },
      }),
      { status: 200, headers: { 'content-type': 'text/event-stream' } },
    );
  }) as typeof fetch;
  return { fetchImpl, requests, streams: () => requests.filter((path) => path.endsWith('/balance/stream')).length, openStreams: () => openStreams };
}

/** A document whose visibility the test sets. */
function fakeDocument() {
  const listeners: Array<() => void> = [];
  const page = {
    visibilityState: 'visible' as DocumentVisibilityState,
    addEventListener: (_type: string, listener: () => void) => void listeners.push(listener),
  };
  return { page, show: (state: DocumentVisibilityState) => ((page.visibilityState = state), listeners.forEach((listener) => listener())) };
}

async function until(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not so within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('SharedConnections', () => {
  it('given a badge and a credits page of one token, then they follow one session read, one balance read and one stream', async () => {
    const ledger = fakeLedger();
    const { page } = fakeDocument();
    const connections = new SharedConnections(page as unknown as Document, 60_000);
    const badge: ConnectionSnapshot[] = [];
    const credits: ConnectionSnapshot[] = [];
    const first = connections.join('token http://ledger.test', () => new PortalApi('token', 'http://ledger.test', ledger.fetchImpl), (s) => void badge.push(s));
    await until(() => badge.at(-1)?.state === 'live');
    const second = connections.join('token http://ledger.test', () => new PortalApi('token', 'http://ledger.test', ledger.fetchImpl), (s) => void credits.push(s));
    expect(second.connection).toBe(first.connection);
    expect(second.connection.snapshot).toMatchObject({ state: 'live', balance: { available: 7_000_000n } });
    expect(ledger.requests.filter((path) => path === '/v1/portal/session')).toHaveLength(1);
    expect(ledger.streams()).toBe(1);

    first.leave();
    expect(ledger.openStreams()).toBe(1); // the credits page still follows it
    second.leave();
    await until(() => ledger.openStreams() === 0);
    expect(connections.size).toBe(0);
  });

  it('given a document hidden for the close time, then its stream closes, and opens again (balance read first) when it is shown', async () => {
    const ledger = fakeLedger();
    const { page, show } = fakeDocument();
    const connections = new SharedConnections(page as unknown as Document, 100);
    const seen: ConnectionSnapshot[] = [];
    const joined = connections.join('token http://ledger.test', () => new PortalApi('token', 'http://ledger.test', ledger.fetchImpl), (s) => void seen.push(s));
    await until(() => seen.at(-1)?.state === 'live');

    show('hidden');
    await until(() => ledger.openStreams() === 0);
    const balanceReads = ledger.requests.filter((path) => path.endsWith('/balance')).length;

    show('visible');
    await until(() => ledger.openStreams() === 1);
    expect(ledger.requests.filter((path) => path.endsWith('/balance')).length).toBe(balanceReads + 1);
    expect(ledger.streams()).toBe(2);
    joined.leave();
    await until(() => ledger.openStreams() === 0);
  });

  it('given a document hidden for less than the close time, then its stream stays open', async () => {
    const ledger = fakeLedger();
    const { page, show } = fakeDocument();
    const connections = new SharedConnections(page as unknown as Document, 60_000);
    const joined = connections.join('token http://ledger.test', () => new PortalApi('token', 'http://ledger.test', ledger.fetchImpl), () => undefined);
    await until(() => ledger.openStreams() === 1);
    show('hidden');
    show('visible');
    expect(ledger.streams()).toBe(1);
    expect(ledger.openStreams()).toBe(1);
    joined.leave();
    await until(() => ledger.openStreams() === 0);
  });
});
