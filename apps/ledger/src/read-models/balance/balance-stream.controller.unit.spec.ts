import { createServer, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { LedgerConfig } from '../../config/ledger.config';
import { LedgerError } from '../../ledger.errors';
import type { BalanceReadRepository } from './balance.repository';
import type { BalanceNotifications } from './balance-notifications.service';
import { BalanceStreamController, SSE_MAX_BUFFERED_BYTES } from './balance-stream.controller';
import type { ProjectedBalance } from './balance.repository';

/** The ledger's configuration as the controller reads it: BALANCE_STREAMS_MAX streams of every caller, any number of one key's. */
const streamsMax = (max = 10_000) => ({ BALANCE_STREAMS_MAX: max, BALANCE_STREAMS_PER_KEY: 10_000 }) as LedgerConfig;

describe('BalanceStreamController while the ledger shuts down', () => {
  it('refuses a new stream with SHUTTING_DOWN once shutdown began, before reading anything', async () => {
    // Given a controller whose module is being destroyed (SIGTERM); its dependencies must not be reached.
    const untouched = new Proxy({}, { get: (_, name) => { throw new Error(`reached ${String(name)}`); } });
    const controller = new BalanceStreamController(untouched as BalanceReadRepository, untouched as BalanceNotifications, streamsMax());
    controller.onModuleDestroy();

    // When a client opens a live balance stream
    const opened = controller.stream('acct-1', undefined, {} as FastifyRequest, {} as FastifyReply);

    // Then it is refused with the retryable code (503, Retry-After) and nothing else happens
    await expect(opened).rejects.toBeInstanceOf(LedgerError);
    await expect(opened).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
  });
});

describe('BalanceStreamController: the portal streams of one account', () => {
  /** A reply whose raw response records what is written; `close()` is the client going away. */
  const replyStub = () => {
    const listeners = new Map<string, () => void>();
    const raw = {
      writableEnded: false, statusCode: 0,
      setHeader: () => undefined, flushHeaders: () => undefined, write: () => true,
      on: (event: string, listener: () => void) => listeners.set(event, listener),
      end: () => listeners.get('close')?.(),
    };
    const reply = { header: () => reply, hijack: () => undefined, getHeaders: () => ({}), raw };
    return reply as unknown as FastifyReply;
  };
  const request = { socket: { destroyed: false } } as unknown as FastifyRequest;
  const portal = { accountId: 'acct-1', expiresAt: new Date(Date.now() + 60_000) } as never;

  it('admits five of eight opened together while the LISTEN connection is still being opened, and refuses the rest', async () => {
    // Given the process's LISTEN connection not open yet: every subscription waits for it
    let listening!: () => void;
    const connected = new Promise<void>((resolve) => (listening = resolve));
    const notifications = { subscribe: async () => { await connected; return () => undefined; } } as unknown as BalanceNotifications;
    const balances = { require: async () => undefined, find: async () => undefined } as unknown as BalanceReadRepository;
    const controller = new BalanceStreamController(balances, notifications, streamsMax());

    // When eight streams of one account's portal token are opened at once, and then the connection is up
    const opened = Promise.allSettled(Array.from({ length: 8 }, () => controller.stream('acct-1', portal, request, replyStub())));
    await new Promise((resolve) => setImmediate(resolve));
    listening();
    const outcomes = await opened;

    // Then five are admitted and three refused with TOO_MANY_STREAMS, however the opens interleaved
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(5);
    const refused = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    expect(refused.map((outcome) => (outcome.reason as LedgerError).code)).toEqual(['TOO_MANY_STREAMS', 'TOO_MANY_STREAMS', 'TOO_MANY_STREAMS']);
    controller.onModuleDestroy();
  });

  it('given BALANCE_STREAMS_MAX streams of service keys open, when one more is opened, then it is refused with STREAMS_AT_CAPACITY until one closes', async () => {
    // Given a process capped at 3 streams, holding 3 of service keys (no portal token: no per-account cap), one of them the same account's
    const notifications = { subscribe: async () => () => undefined } as unknown as BalanceNotifications;
    const balances = { require: async () => undefined, find: async () => undefined } as unknown as BalanceReadRepository;
    const controller = new BalanceStreamController(balances, notifications, streamsMax(3));
    const replies = Array.from({ length: 3 }, replyStub);
    await Promise.all(replies.map((reply, i) => controller.stream(`acct-${i % 2}`, undefined, request, reply)));

    // When a fourth is opened, of any account and any caller
    const fourth = controller.stream('acct-9', undefined, request, replyStub());
    const portalFourth = controller.stream('acct-9', portal, request, replyStub());

    // Then it is refused (503 with Retry-After: another instance may answer), and after one closes the next is admitted
    await expect(fourth).rejects.toMatchObject({ code: 'STREAMS_AT_CAPACITY', details: { limit: 3 } });
    await expect(portalFourth).rejects.toMatchObject({ code: 'STREAMS_AT_CAPACITY' });
    (replies[0] as unknown as { raw: { end: () => void } }).raw.end();
    await expect(controller.stream('acct-9', undefined, request, replyStub())).resolves.toBeUndefined();
    await expect(controller.stream('acct-9', undefined, request, replyStub())).rejects.toMatchObject({ code: 'STREAMS_AT_CAPACITY' });
    controller.onModuleDestroy();
  });

  it('given one API key holding BALANCE_STREAMS_PER_KEY streams, when it (or a portal token it minted) opens one more, then that is refused with TOO_MANY_STREAMS while other keys are admitted', async () => {
    // Given an instance of 10 streams that lets one key hold 2, key A holding 2 (of two accounts)
    const notifications = { subscribe: async () => () => undefined } as unknown as BalanceNotifications;
    const balances = { require: async () => undefined, find: async () => undefined } as unknown as BalanceReadRepository;
    const controller = new BalanceStreamController(balances, notifications, { BALANCE_STREAMS_MAX: 10, BALANCE_STREAMS_PER_KEY: 2 } as LedgerConfig);
    const keyA = { socket: { destroyed: false }, apiKeyId: 'key-a' } as unknown as FastifyRequest;
    const keyB = { socket: { destroyed: false }, apiKeyId: 'key-b' } as unknown as FastifyRequest;
    const held = [replyStub(), replyStub()];
    await controller.stream('acct-1', undefined, keyA, held[0]);
    await controller.stream('acct-2', undefined, keyA, held[1]);

    // When A opens a third, a portal token A minted opens one, and key B opens one
    const third = controller.stream('acct-3', undefined, keyA, replyStub());
    const mintedByA = controller.stream('acct-4', { ...(portal as object), accountId: 'acct-4', mintedBy: 'key-a' } as never, request, replyStub());
    const ofB = controller.stream('acct-3', undefined, keyB, replyStub());

    // Then A's are refused (429: the caller's share, not the instance, is full) and B's admitted; A may open again once one closes
    await expect(third).rejects.toMatchObject({ code: 'TOO_MANY_STREAMS', details: { limit: 2 } });
    await expect(mintedByA).rejects.toMatchObject({ code: 'TOO_MANY_STREAMS' });
    await expect(ofB).resolves.toBeUndefined();
    (held[0] as unknown as { raw: { end: () => void } }).raw.end();
    await expect(controller.stream('acct-3', undefined, keyA, replyStub())).resolves.toBeUndefined();
    controller.onModuleDestroy();
  });

  it('gives the slots back when subscribing fails, so a failed open counts neither against the account nor the instance', async () => {
    // Given a LISTEN connection that cannot be opened (PostgreSQL is down), on an instance that takes 5 streams
    const notifications: { subscribe: () => Promise<() => void> } = { subscribe: async () => { throw new Error('connect ECONNREFUSED'); } };
    const balances = { require: async () => undefined, find: async () => undefined } as unknown as BalanceReadRepository;
    const controller = new BalanceStreamController(balances, notifications as unknown as BalanceNotifications, streamsMax(5));

    // When six opens fail
    for (let i = 0; i < 6; i++) await expect(controller.stream('acct-1', portal, request, replyStub())).rejects.toThrow('ECONNREFUSED');

    // Then, once PostgreSQL is back, five can still be opened, and the sixth is refused by the account's cap (checked first)
    notifications.subscribe = async () => () => undefined;
    for (let i = 0; i < 5; i++) await expect(controller.stream('acct-1', portal, request, replyStub())).resolves.toBeUndefined();
    await expect(controller.stream('acct-1', portal, request, replyStub())).rejects.toMatchObject({ code: 'TOO_MANY_STREAMS' });
    await expect(controller.stream('acct-2', undefined, request, replyStub())).rejects.toMatchObject({ code: 'STREAMS_AT_CAPACITY' });
    controller.onModuleDestroy();
  });

  it('lets a stream opened again under its key take the place of one still waiting for the LISTEN connection', async () => {
    // Given the LISTEN connection not open yet, and a stream of the account's portal token waiting for it under a key
    let listening!: () => void;
    const connected = new Promise<void>((resolve) => (listening = resolve));
    let unsubscribed = 0;
    const notifications = { subscribe: async () => { await connected; return () => void (unsubscribed += 1); } } as unknown as BalanceNotifications;
    const balances = { require: async () => undefined, find: async () => undefined } as unknown as BalanceReadRepository;
    const controller = new BalanceStreamController(balances, notifications, streamsMax());
    const lost = replyStub();
    let lostDestroyed = false;
    const lostRequest = { socket: { destroyed: false } } as unknown as FastifyRequest;
    Object.assign(lost.raw, { destroy: () => { lostDestroyed = true; (lostRequest.socket as { destroyed: boolean }).destroyed = true; } });
    const first = controller.stream('acct-1', portal, lostRequest, lost, 'key-of-one-page-0001');
    await new Promise((resolve) => setImmediate(resolve));

    // When its client opens it again under the same key, then four more streams are opened, and the connection is up
    const again = controller.stream('acct-1', portal, request, replyStub(), 'key-of-one-page-0001');
    const others = Array.from({ length: 4 }, () => controller.stream('acct-1', portal, request, replyStub()));
    await new Promise((resolve) => setImmediate(resolve));
    listening();
    await Promise.all([first, again, ...others]);

    // Then the first was dropped and let go of its subscription, and its slot went to the others: five are open, a sixth is refused
    expect(lostDestroyed).toBe(true);
    expect(unsubscribed).toBe(1);
    await expect(controller.stream('acct-1', portal, request, replyStub())).rejects.toMatchObject({ code: 'TOO_MANY_STREAMS' });
    controller.onModuleDestroy();
  });

  it('refuses a stream key that is not a plain random token with 400 naming it, before reading anything', async () => {
    const untouched = new Proxy({}, { get: (_, name) => { throw new Error(`reached ${String(name)}`); } });
    const controller = new BalanceStreamController(untouched as BalanceReadRepository, untouched as BalanceNotifications, streamsMax());
    for (const key of ['short', 'x'.repeat(65), 'has space in it 0123', ['a-list-of-keys-0001', 'a-list-of-keys-0002']]) {
      await expect(controller.stream('acct-1', portal, request, replyStub(), key)).rejects.toMatchObject({ issues: [expect.objectContaining({ field: 'streamKey' })] });
    }
  });

  it('sends nothing before its headers: a balance the subscription hands over while it is being set up (a LISTEN reconnect re-reading followed accounts) waits for the first read', async () => {
    // Given a subscription that passes a balance on before it resolves
    const early = { accountId: 'acct-1', streamVersion: 7 } as unknown as ProjectedBalance;
    const notifications = { subscribe: async (_account: string, send: (balance: ProjectedBalance) => void) => { send(early); return () => undefined; } } as unknown as BalanceNotifications;
    const balances = { require: async () => undefined, find: async () => ({ ...early, streamVersion: 8 }) } as unknown as BalanceReadRepository;
    const controller = new BalanceStreamController(balances, notifications, streamsMax());
    const reply = replyStub();
    const written: string[] = [];
    let headersSent = false;
    Object.assign(reply.raw, {
      flushHeaders: () => void (headersSent = true),
      write: (frame: string) => {
        if (!headersSent) throw new Error('ERR_HTTP_HEADERS_SENT: a frame written before the headers');
        written.push(frame);
        return true;
      },
    });

    // When the stream is opened
    await controller.stream('acct-1', undefined, request, reply);

    // Then the headers went first, and the balance came as the stream's first frame
    expect(written[0]).toBe('retry: 3000\n\n');
    expect(written.filter((frame) => frame.startsWith('event: balance'))).toHaveLength(1);
    expect(written[1]).toContain('id: 8');
    controller.onModuleDestroy();
  });

  it('ends a stream whose first balance read failed, so that its client opens it again, rather than leaving it without a balance', async () => {
    // Given a read model that cannot be read just now
    const notifications = { subscribe: async () => () => undefined } as unknown as BalanceNotifications;
    const balances = { require: async () => undefined, find: async () => { throw new Error('too many connections'); } } as unknown as BalanceReadRepository;
    const controller = new BalanceStreamController(balances, notifications, streamsMax());
    const reply = replyStub();
    let ended = false;
    const end = reply.raw.end.bind(reply.raw);
    reply.raw.end = (() => {
      ended = true;
      return end();
    }) as never;

    // When a stream is opened
    await controller.stream('acct-1', undefined, request, reply);

    // Then it is ended (the client reconnects after `retry:`)
    expect(ended).toBe(true);
  });
});

describe('BalanceStreamController: a client that stops reading (real HTTP on loopback)', () => {
  it('ends its stream once the frames it has not read pass the bound, instead of buffering every later balance', async () => {
    // Given a live stream served on a real socket, whose client sent its request and then reads nothing more
    let push!: (balance: ProjectedBalance) => void;
    const notifications = { subscribe: async (_account: string, send: (balance: ProjectedBalance) => void) => ((push = send), () => undefined) } as unknown as BalanceNotifications;
    const balances = { require: async () => undefined, find: async () => undefined } as unknown as BalanceReadRepository;
    const controller = new BalanceStreamController(balances, notifications, streamsMax());
    let response!: ServerResponse;
    const served = new Promise<void>((resolve) => {
      const server = createServer((req, res) => {
        response = res;
        const reply = { header: () => reply, hijack: () => undefined, getHeaders: () => ({}), raw: res } as unknown as FastifyReply;
        void controller.stream('acct-1', undefined, req as unknown as FastifyRequest, reply).then(() => resolve());
      });
      server.listen(0, '127.0.0.1', () => {
        const client = connect((server.address() as AddressInfo).port, '127.0.0.1', () => {
          client.write('GET /v1/accounts/acct-1/balance/stream HTTP/1.1\r\nHost: x\r\n\r\n');
          client.pause();
        });
        client.on('error', () => undefined);
        server.unref();
      });
    });
    await served;

    // When balances keep coming, 10 KB a frame, 64 MB in all: far more than the socket's buffers hold
    const fat = 'x'.repeat(10_000);
    let mostBuffered = 0;
    for (let version = 1; version <= 6_400 && !response.destroyed; version++) {
      push({ accountId: 'acct-1', streamVersion: version, note: fat } as unknown as ProjectedBalance);
      mostBuffered = Math.max(mostBuffered, response.writableLength);
      if (version % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
    }

    // Then the stream was ended (its client reconnects and reads the balance now), and never held much more than the bound
    expect(response.destroyed).toBe(true);
    expect(mostBuffered).toBeLessThan(SSE_MAX_BUFFERED_BYTES + 20_000);
    controller.onModuleDestroy();
  });
});
