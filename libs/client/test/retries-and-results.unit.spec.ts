import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { DEFAULT_RETRY, retryDelayMs, TallyClient, TallyError, type Authorization } from '../src';

interface Seen {
  method: string;
  url: string;
  body: any;
  /** The body's length in bytes. */
  bytes: number;
}
type Answer = (seen: Seen, res: ServerResponse) => void;

/** A real HTTP server on a free port that answers request n with `answers[n]` (the last one again after that). */
async function serve(answers: Answer[]): Promise<{ seen: Seen[]; url: string; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const request = { method: req.method ?? '', url: req.url ?? '', body: text ? JSON.parse(text) : undefined, bytes: Buffer.byteLength(text) };
    seen.push(request);
    answers[Math.min(seen.length, answers.length) - 1](request, res);
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { seen, url, close: () => new Promise((done) => {
    server.close(() => done());
    server.closeAllConnections();
  }) };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Answer => (_seen, res) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
};
/** Drops the connection without an answer: a network failure on the client's side. */
const hangUp: Answer = (_seen, res) => res.socket?.destroy();
const unavailable = json(503, { code: 'DEPENDENCY_UNAVAILABLE', message: 'Try again shortly.' }, { 'retry-after': '0' });

const clientOf = (url: string, attempts = 4) =>
  new TallyClient({ apiKey: 'test-key', urls: { usageIngest: url, ledger: url }, retry: { attempts, baseDelayMs: 1, maxDelayMs: 20 } });

describe('libs/client against a real HTTP server', () => {
  let server: Awaited<ReturnType<typeof serve>> | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('retries a usage event after a 503 with Retry-After and a dropped connection, resending the same id and time', async () => {
    server = await serve([unavailable, hangUp, json(202, { accepted: 1, duplicates: 0, duplicateIds: [] })]);
    const report = await clientOf(server.url).reportUsage({ accountId: 'acct-1', feature: 'chat', model: 'gpt-4o', inputTokens: 10, outputTokens: 5 });

    expect(report).toEqual({ accepted: 1, duplicates: 0, duplicateIds: [], ids: [expect.stringMatching(/^usage-[0-9a-f-]{36}$/)] });
    expect(server.seen).toHaveLength(3);
    const [first, ...retries] = server.seen;
    expect(first).toMatchObject({ method: 'POST', url: '/v1/usage-events', body: { id: report.ids[0], accountId: 'acct-1' } });
    for (const retry of retries) expect(retry.body).toEqual(first.body); // same idempotency key, same occurredAt
  });

  it('retries a batch as one unit, each event keeping its id, and splits more than 1000 events into requests of 1000', async () => {
    server = await serve([hangUp, (seen, res) => json(202, { accepted: seen.body.events?.length ?? 1, duplicates: 0, duplicateIds: [] })(seen, res)]);
    const events = Array.from({ length: 1001 }, (_, n) => ({ id: `e-${n}`, accountId: 'acct-1', feature: 'chat' as const, model: 'gpt-4o', inputTokens: 1, outputTokens: 1 }));
    const report = await clientOf(server.url).reportUsageBatch(events);

    expect(report.accepted).toBe(1001);
    // 1000 events dropped, the same 1000 again, then a one-event request (sent as a single event).
    expect(server.seen.map((s) => s.body.events?.length ?? 1)).toEqual([1000, 1000, 1]);
    expect(server.seen[1].body).toEqual(server.seen[0].body);
    expect(server.seen[2].body.id).toBe('e-1000');
  });

  // usage-ingest refuses a body over BODY_LIMIT (2 MiB by default) with 413, which is not retried: 1,000 events that
  // each carry a few long labels are more than that, though each is valid.
  it('splits a batch by size too: no request body over 1 MiB, every event sent once, in order', async () => {
    server = await serve([(seen, res) => json(202, { accepted: seen.body.events?.length ?? 1, duplicates: 0, duplicateIds: [] })(seen, res)]);
    const labels = Object.fromEntries(['a', 'b', 'c', 'd'].map((key) => [key, 'é'.repeat(512)]));
    const events = Array.from({ length: 1000 }, (_, n) => ({ id: `big-${n}`, accountId: 'acct-1', feature: 'chat' as const, model: 'gpt-4o', inputTokens: 1, outputTokens: 1, metadata: labels }));
    const report = await clientOf(server.url).reportUsageBatch(events);

    expect(report.accepted).toBe(1000);
    const sizes = server.seen.map((s) => Buffer.byteLength(JSON.stringify(s.body)));
    expect(sizes.length).toBeGreaterThan(1);
    for (const size of sizes) expect(size).toBeLessThanOrEqual(1024 * 1024);
    expect(server.seen.flatMap((s) => (s.body.events ?? [s.body]).map((e: { id: string }) => e.id))).toEqual(events.map((e) => e.id));
  });

  it('waits out a 429 RATE_LIMITED for the Retry-After it gave, then retries the same request', async () => {
    const limited = json(429, { code: 'RATE_LIMITED', message: 'Too many requests; retry after 1 s.' }, { 'retry-after': '1' });
    server = await serve([limited, json(200, { accountId: 'acct-1', available: '1' })]);
    const client = new TallyClient({ apiKey: 'test-key', urls: { usageIngest: server.url, ledger: server.url }, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5_000 } });
    const started = Date.now();
    await expect(client.balance('acct-1')).resolves.toMatchObject({ available: '1' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(server.seen.map((seen) => seen.url)).toEqual(['/v1/accounts/acct-1/balance', '/v1/accounts/acct-1/balance']);
  });

  it('stops after the configured attempts: the last 503 as a TallyError with its code', async () => {
    server = await serve([unavailable]);
    const failure = await clientOf(server.url, 3).balance('acct-1').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TallyError);
    expect(failure).toMatchObject({ status: 503, code: 'DEPENDENCY_UNAVAILABLE' });
    expect(server.seen).toHaveLength(3);
  });

  it('gives up on a server that never answers with NETWORK_ERROR (status 0)', async () => {
    server = await serve([hangUp]);
    await expect(clientOf(server.url, 2).balance('acct-1')).rejects.toMatchObject({ status: 0, code: 'NETWORK_ERROR' });
    expect(server.seen).toHaveLength(2);
  });

  it('does not retry a 4xx: a refused field comes back at once as a TallyError naming it', async () => {
    server = await serve([json(400, { code: 'VALIDATION_FAILED', message: 'The request is invalid.', details: [{ field: 'amount', reason: 'amount must be a decimal string' }] })]);
    const failure = (await clientOf(server.url).authorize('acct-1', { amount: 'x' }).catch((error: unknown) => error)) as TallyError;
    expect(failure).toMatchObject({ status: 400, code: 'VALIDATION_FAILED', field: 'amount' });
    expect(server.seen).toHaveLength(1);
  });

  it('names the events a later request of a batch refused by their place in the whole list', async () => {
    const outside = json(403, { code: 'ACCOUNT_OUTSIDE_NAMESPACE', message: 'Usage events name an account outside the key.', details: { indexes: [2], accountIds: ['other-1'] } });
    const refused = json(400, { code: 'INVALID_PAYLOAD', message: 'Invalid.', details: [{ field: 'events.1.inputTokens', reason: 'must be an integer' }] });
    const accepted = (seen: Seen, res: ServerResponse) => json(202, { accepted: seen.body.events.length, duplicates: 0, duplicateIds: [] })(seen, res);
    const events = Array.from({ length: 1003 }, (_, index) => ({ accountId: index === 1002 ? 'other-1' : 'acct-1', feature: 'chat' as const, model: 'gpt-4o', inputTokens: 1, outputTokens: 1 }));

    server = await serve([accepted, outside]);
    await expect(clientOf(server.url, 1).reportUsageBatch(events)).rejects.toMatchObject({ code: 'ACCOUNT_OUTSIDE_NAMESPACE', details: { indexes: [1002], accountIds: ['other-1'] }, reported: { accepted: 1000 } });
    await server.close();
    server = await serve([accepted, refused]);
    const failure = (await clientOf(server.url, 1).reportUsageBatch(events).catch((error: unknown) => error)) as TallyError & { cause: TallyError };
    expect({ field: failure.field, asAnswered: failure.cause.field }).toEqual({ field: 'events.1001.inputTokens', asAnswered: 'events.1.inputTokens' });
  });

  it('gives the hold id it generated with a placing that got no answer, so the hold can be released or asked for again as one', async () => {
    server = await serve([hangUp, hangUp, json(200, { allowed: true, required: '1', available: '9', hold: { holdId: 'x', amount: '1', expiresAt: '2026-12-01T00:00:00.000Z' } })]);
    const client = clientOf(server.url, 2);

    const failure = (await client.placeHold('acct-1', { amount: '1' }).catch((error: unknown) => error)) as TallyError & { holdId?: string };

    expect(failure).toMatchObject({ status: 0, code: 'NETWORK_ERROR' });
    const sent = server.seen.map((seen) => seen.body.hold.holdId);
    expect(sent).toEqual([expect.stringMatching(/^hold-/), sent[0]]); // the same id on every attempt
    expect(failure.holdId).toBe(sent[0]);
    // Asked for again with that id: the same hold, whichever attempt placed it.
    await client.placeHold('acct-1', { amount: '1' }, { holdId: failure.holdId });
    expect(server.seen[2].body.hold.holdId).toBe(sent[0]);
  });

  it('sends smaller batches once usage-ingest says its MAX_BATCH is lower than 1000, each event once, in order', async () => {
    const limit = 300;
    server = await serve([
      (seen, res) => {
        const count = seen.body.events?.length ?? 1;
        if (count > limit) return json(413, { code: 'BATCH_TOO_LARGE', message: `A batch holds at most ${limit} events.`, details: { count, limit } })(seen, res);
        return json(202, { accepted: count, duplicates: 0, duplicateIds: [] })(seen, res);
      },
    ]);
    const client = clientOf(server.url, 1);
    const events = Array.from({ length: 1100 }, (_, index) => ({ id: `u-${index}`, accountId: 'acct-1', feature: 'chat' as const, model: 'gpt-4o', inputTokens: 1, outputTokens: 1 }));

    expect(await client.reportUsageBatch(events)).toMatchObject({ accepted: 1100, duplicates: 0 });
    const accepted = server.seen.filter((seen) => (seen.body.events?.length ?? 1) <= limit);
    expect(accepted.flatMap((seen) => seen.body.events.map((event: { id: string }) => event.id))).toEqual(events.map((event) => event.id));
    // Remembered: the next report goes in batches of the limit at once.
    const before = server.seen.length;
    await client.reportUsageBatch(events.slice(0, 600));
    expect(server.seen.slice(before).map((seen) => seen.body.events.length)).toEqual([300, 300]);
  });

  it('sends smaller requests once usage-ingest refuses a body over its BODY_LIMIT (below 1 MiB), each event once, in order', async () => {
    const bodyLimit = 64 * 1024; // a 413 with no limit named, as the HTTP layer answers a body over BODY_LIMIT
    server = await serve([
      (seen, res) => {
        if (seen.bytes > bodyLimit) return json(413, { code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large.' })(seen, res);
        return json(202, { accepted: seen.body.events?.length ?? 1, duplicates: 0, duplicateIds: [] })(seen, res);
      },
    ]);
    const client = clientOf(server.url, 1);
    const label = 'x'.repeat(400);
    const events = Array.from({ length: 1100 }, (_, index) => ({ id: `u-${index}`, accountId: 'acct-1', feature: 'chat' as const, model: 'gpt-4o', inputTokens: 1, outputTokens: 1, metadata: { label } }));

    expect(await client.reportUsageBatch(events)).toMatchObject({ accepted: 1100, duplicates: 0 });
    const accepted = server.seen.filter((seen) => seen.bytes <= bodyLimit);
    expect(accepted.flatMap((seen) => (seen.body.events ?? [seen.body]).map((event: { id: string }) => event.id))).toEqual(events.map((event) => event.id));
    // Remembered: the next report is sent in requests the server takes, none refused.
    const before = server.seen.length;
    await client.reportUsageBatch(events.slice(0, 300));
    expect(server.seen.slice(before).every((seen) => seen.bytes <= bodyLimit)).toBe(true);
  });

  it('gives running out of credits as a typed result, not an exception', async () => {
    server = await serve([json(402, { code: 'INSUFFICIENT_CREDITS', message: 'Not enough credits.', required: '2.5', available: '0.75', hint: 'Buy a credit pack or upgrade your plan to continue.' })]);
    const result: Authorization = await clientOf(server.url).authorize('acct-1', { amount: '2.5' }, { ttlSeconds: 60 });

    expect(result).toEqual({ ok: false, reason: 'INSUFFICIENT_CREDITS', required: '2.5', available: '0.75', hint: 'Buy a credit pack or upgrade your plan to continue.', message: 'Not enough credits.' });
    // The hold id is generated before the first attempt (a retried hold is the same hold).
    expect(server.seen[0].body).toEqual({ amount: '2.5', hold: { holdId: expect.stringMatching(/^hold-/), ttlSeconds: 60 } });
    if (result.ok) throw new Error('expected the insufficient-credits result');
    // Narrowed by `ok`: the failure's fields are typed, the success's are not there.
    const reason: 'INSUFFICIENT_CREDITS' = result.reason;
    expect(reason).toBe('INSUFFICIENT_CREDITS');
    // @ts-expect-error a refused authorization has no hold
    expect(result.hold).toBeUndefined();
  });

  it('releases the hold when the work throws, and rethrows the work error', async () => {
    const hold = { holdId: 'h-1', amount: '1', expiresAt: '2026-12-01T00:00:00.000Z' };
    server = await serve([
      json(200, { allowed: true, required: '1', available: '9', hold }),
      json(200, { holdId: 'h-1', released: '1', available: '10' }),
    ]);
    const work = async () => {
      throw new Error('the model failed');
    };
    await expect(clientOf(server.url).withHold('acct-1', { amount: '1' }, work, { holdId: 'h-1' })).rejects.toThrow('the model failed');
    expect(server.seen.map((s) => `${s.method} ${s.url}`)).toEqual(['POST /v1/accounts/acct-1/authorizations', 'DELETE /v1/accounts/acct-1/holds/h-1']);
  });

  it('releases the hold when settling is refused, and rethrows that refusal', async () => {
    const hold = { holdId: 'h-2', amount: '1', expiresAt: '2026-12-01T00:00:00.000Z' };
    server = await serve([
      json(200, { allowed: true, required: '1', available: '9', hold }),
      json(400, { code: 'VALIDATION_FAILED', message: 'The request is invalid.', details: [{ field: 'model', reason: 'unknown model' }] }),
      json(200, { holdId: 'h-2', released: '1', available: '10' }),
    ]);
    const work = async () => ({ feature: 'chat' as const, model: 'gpt-9-imaginary', inputTokens: 1, outputTokens: 1 });
    await expect(clientOf(server.url).withHold('acct-1', { amount: '1' }, work, { holdId: 'h-2' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED', field: 'model' });
    expect(server.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'POST /v1/accounts/acct-1/authorizations',
      'POST /v1/usage-events',
      'DELETE /v1/accounts/acct-1/holds/h-2',
    ]);
    expect(server.seen[1].body).toMatchObject({ id: 'settle-h-2', holdId: 'h-2', accountId: 'acct-1' });
  });

  // The hold may have been placed even though no answer came back: it is released, under the id it was asked for.
  it('releases the hold it asked for when the authorization got no answer at all, and rethrows that failure', async () => {
    server = await serve([hangUp, hangUp, json(200, { holdId: 'h-lost', released: '1', available: '10' })]);
    const work = jest.fn(async () => ({ feature: 'chat' as const, model: 'gpt-4o', inputTokens: 1, outputTokens: 1 }));
    await expect(clientOf(server.url, 2).withHold('acct-1', { amount: '1' }, work, { holdId: 'h-lost' })).rejects.toMatchObject({ code: 'NETWORK_ERROR' });
    expect(work).not.toHaveBeenCalled();
    expect(server.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'POST /v1/accounts/acct-1/authorizations',
      'POST /v1/accounts/acct-1/authorizations',
      'DELETE /v1/accounts/acct-1/holds/h-lost',
    ]);
  });

  // The ledger answers 503 for PostgreSQL's connection lost or a statement it did not answer in time, which may have
  // committed all the same (the server goes on after the ledger gave up on it): the hold may be placed.
  it('releases the hold after a 503 (the ledger may have placed it before losing PostgreSQL), and when even the release fails, throws the placing\'s own error', async () => {
    server = await serve([unavailable, unavailable, json(200, { holdId: 'h-busy', released: '0', available: '10' })]);
    const work = jest.fn(async () => ({ feature: 'chat' as const, model: 'gpt-4o', inputTokens: 1, outputTokens: 1 }));
    await expect(clientOf(server.url, 2).withHold('acct-1', { amount: '1' }, work, { holdId: 'h-busy' })).rejects.toMatchObject({ name: 'TallyError', code: 'DEPENDENCY_UNAVAILABLE', mayBePlaced: true });
    expect(server.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'POST /v1/accounts/acct-1/authorizations',
      'POST /v1/accounts/acct-1/authorizations',
      'DELETE /v1/accounts/acct-1/holds/h-busy',
    ]);
    await server.close();

    server = await serve([hangUp]);
    await expect(clientOf(server.url, 2).withHold('acct-1', { amount: '1' }, work, { holdId: 'h-down' })).rejects.toMatchObject({ name: 'TallyError', code: 'NETWORK_ERROR' });
    expect(server.seen.map((s) => s.method)).toEqual(['POST', 'POST', 'DELETE', 'DELETE']);
    expect(work).not.toHaveBeenCalled();
  });

  // An earlier attempt may have placed the hold though its answer was lost; the 503 of the last one says nothing of it.
  it('releases the hold when any attempt of the authorization got no answer, even if the last one was a 503', async () => {
    server = await serve([hangUp, unavailable, json(200, { holdId: 'h-maybe', released: '1', available: '10' })]);
    const work = jest.fn(async () => ({ feature: 'chat' as const, model: 'gpt-4o', inputTokens: 1, outputTokens: 1 }));
    await expect(clientOf(server.url, 2).withHold('acct-1', { amount: '1' }, work, { holdId: 'h-maybe' })).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(work).not.toHaveBeenCalled();
    expect(server.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'POST /v1/accounts/acct-1/authorizations',
      'POST /v1/accounts/acct-1/authorizations',
      'DELETE /v1/accounts/acct-1/holds/h-maybe',
    ]);
  });

  it('gives up on an answer that does not come within timeoutMs (a frozen server), retries, and ends with NETWORK_ERROR', async () => {
    const silent: Answer = () => undefined; // accepts the request, never answers
    server = await serve([silent]);
    const client = new TallyClient({ apiKey: 'test-key', urls: { usageIngest: server.url, ledger: server.url }, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 20 }, timeoutMs: 300 });
    await expect(client.balance('acct-1')).rejects.toMatchObject({ name: 'TallyError', code: 'NETWORK_ERROR', status: 0 });
    expect(server.seen).toHaveLength(2);
  }, 10_000);

  it('refuses, before placing anything, a hold id too long for its settle id (settle-<holdId>, at most 128 characters)', async () => {
    server = await serve([json(500, { code: 'UNEXPECTED', message: 'not to be called' })]);
    const work = jest.fn(async () => ({ feature: 'chat' as const, model: 'gpt-4o', inputTokens: 1, outputTokens: 1 }));
    await expect(clientOf(server.url).withHold('acct-1', { amount: '1' }, work, { holdId: 'h'.repeat(122) })).rejects.toMatchObject({ code: 'VALIDATION_FAILED', field: 'holdId' });
    expect(server.seen).toEqual([]);
    expect(work).not.toHaveBeenCalled();
  });

  // usage-ingest keeps an id it could not produce reserved with the event's content: settling again must send the
  // very same event (its time too), or the id is refused as used with other content and the work is never charged.
  it('settles a hold again, after a settle that failed, with the very same event', async () => {
    server = await serve([unavailable, unavailable, json(202, { accepted: 1, duplicates: 0, duplicateIds: [] })]);
    const client = clientOf(server.url, 2);
    const usage = { feature: 'chat' as const, model: 'gpt-4o', inputTokens: 10, outputTokens: 5 };
    await expect(client.settleHold('acct-1', 'h-3', usage)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    await new Promise((later) => setTimeout(later, 5));
    expect(await client.settleHold('acct-1', 'h-3', usage)).toMatchObject({ accepted: 1, ids: ['settle-h-3'] });
    expect(server.seen).toHaveLength(3);
    for (const sent of server.seen) expect(sent.body).toEqual(server.seen[0].body);
  });

  it('reports a usage event with its own id again, after a report that failed, with the time it was first sent with', async () => {
    server = await serve([unavailable, unavailable, json(202, { accepted: 1, duplicates: 0, duplicateIds: [] })]);
    const client = clientOf(server.url, 2);
    const event = { id: 'job-42', accountId: 'acct-1', feature: 'chat' as const, model: 'gpt-4o', inputTokens: 10, outputTokens: 5 };
    await expect(client.reportUsage(event)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    await new Promise((later) => setTimeout(later, 5));
    expect(await client.reportUsageBatch([event])).toMatchObject({ accepted: 1, ids: ['job-42'] });
    expect(server.seen).toHaveLength(3);
    for (const sent of server.seen) expect(sent.body).toEqual(server.seen[0].body);
  });

  it('remembers the time of a caller-given id per account: the same id on another account is another event', async () => {
    server = await serve([json(202, { accepted: 1, duplicates: 0, duplicateIds: [] })]);
    const client = clientOf(server.url, 1);
    const event = { id: 'job-43', feature: 'chat' as const, model: 'gpt-4o', inputTokens: 10, outputTokens: 5 };
    await client.reportUsage({ ...event, accountId: 'acct-1' });
    await new Promise((later) => setTimeout(later, 5));
    await client.reportUsage({ ...event, accountId: 'acct-2' });
    await client.reportUsage({ ...event, accountId: 'acct-1', occurredAt: '2026-01-01T00:00:00.000Z' });
    const [first, second, given] = server.seen.map((sent) => sent.body.occurredAt);
    expect(second).not.toEqual(first);
    expect(given).toBe('2026-01-01T00:00:00.000Z'); // a time the caller gives is sent as given
  });
});

describe('the live balance stream against a real HTTP server', () => {
  let server: Awaited<ReturnType<typeof serve>> | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });
  const frame = (version: number, available: string) => `event: balance\nid: ${version}\ndata: ${JSON.stringify({ accountId: 'acct-1', streamVersion: version, available })}\n\n`;

  it('yields each `event: balance` frame (split across chunks, between comments) until the signal aborts', async () => {
    server = await serve([
      (_seen, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('retry: 3000\n\n');
        const first = frame(1, '10');
        res.write(first.slice(0, 20)); // a frame cut in two: the parser joins it
        setTimeout(() => res.write(first.slice(20) + ': heartbeat\n\n' + frame(2, '9.5')), 20);
      },
    ]);
    const stop = new AbortController();
    const seen: string[] = [];
    for await (const balance of clientOf(server.url).balanceStream('acct-1', { signal: stop.signal })) {
      seen.push(balance.available);
      if (seen.length === 2) stop.abort(); // the loop then ends without an error
    }
    expect(seen).toEqual(['10', '9.5']);
    expect(server.seen[0]).toMatchObject({ method: 'GET', url: '/v1/accounts/acct-1/balance/stream' });
  });

  // A product's header shows this stream for hours. A stream the server ends (every rolling deploy of the ledger ends
  // them all) or one gone silent (a NAT or a load balancer dropping an idle connection without a word, a laptop
  // waking up) left the header frozen on its last balance: the first ended the iteration with STREAM_ENDED, the
  // second never ended at all. The stream now comes back by itself; each connection begins with the balance then, and
  // a frame already yielded is not yielded again.
  it('comes back after the server ends it, without yielding the same balance twice', async () => {
    server = await serve([
      (_seen, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end(frame(1, '10')),
      (_seen, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).write(frame(1, '10') + frame(2, '9')),
    ]);
    const stop = new AbortController();
    const seen: string[] = [];
    for await (const balance of clientOf(server.url).balanceStream('acct-1', { signal: stop.signal })) {
      seen.push(balance.available);
      if (seen.length === 2) stop.abort();
    }
    expect(seen).toEqual(['10', '9']);
    expect(server.seen).toHaveLength(2);
  });

  it('takes a stream silent for longer than stallMs (no frame, no heartbeat) for dead, and opens another', async () => {
    server = await serve([
      (_seen, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).write(frame(1, '10')), // then nothing, for ever
      (_seen, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).write(frame(2, '9')),
    ]);
    const stop = new AbortController();
    const seen: string[] = [];
    for await (const balance of clientOf(server.url).balanceStream('acct-1', { signal: stop.signal, stallMs: 300 })) {
      seen.push(balance.available);
      if (seen.length === 2) stop.abort();
    }
    expect(seen).toEqual(['10', '9']);
    expect(server.seen).toHaveLength(2);
  });

  it('yields a new stream whose balance is at a lower version than the last one yielded (the database went back in time)', async () => {
    server = await serve([
      (_seen, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end(frame(7, '10')),
      (_seen, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).write(frame(5, '12') + frame(6, '11')),
    ]);
    const stop = new AbortController();
    const seen: string[] = [];
    for await (const balance of clientOf(server.url).balanceStream('acct-1', { signal: stop.signal })) {
      seen.push(balance.available);
      if (seen.length === 3) stop.abort();
    }
    expect(seen).toEqual(['10', '12', '11']);
  });

  it('ends with NETWORK_ERROR when the ledger was never reached within the attempts (a wrong URL), not waiting for ever', async () => {
    const closed = await serve([json(200, {})]);
    const url = closed.url;
    await closed.close(); // nothing listens there now
    const started = Date.now();
    const next = clientOf(url, 3).balanceStream('acct-1')[Symbol.asyncIterator]().next();
    await expect(next).rejects.toMatchObject({ status: 0, code: 'NETWORK_ERROR' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(200); // two waits of at least 100 ms between the three attempts
  });

  it('waits out a refusal that may pass (429 too many streams, 503), and ends with a TallyError on one that will not', async () => {
    server = await serve([
      json(429, { code: 'TOO_MANY_STREAMS', message: 'Too many live streams for this account.' }, { 'retry-after': '0' }),
      json(503, { code: 'NOT_READY', message: 'Not ready.' }),
      (_seen, res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).write(frame(1, '10')),
    ]);
    const stop = new AbortController();
    for await (const balance of clientOf(server.url).balanceStream('acct-1', { signal: stop.signal })) {
      expect(balance.available).toBe('10');
      stop.abort();
    }
    expect(server.seen).toHaveLength(3);
    await server.close();

    server = await serve([json(404, { code: 'ACCOUNT_NOT_FOUND', message: 'No such account.' })]);
    const refused = clientOf(server.url).balanceStream('acct-2')[Symbol.asyncIterator]().next();
    await expect(refused).rejects.toMatchObject({ status: 404, code: 'ACCOUNT_NOT_FOUND' });
  });
});

describe('retry backoff', () => {
  it('is bounded by maxDelayMs, grows from baseDelayMs, and honours (but caps) Retry-After', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.double({ min: 0, max: 1, noNaN: true }), (retry, random) => {
        const delay = retryDelayMs(retry, DEFAULT_RETRY, undefined, () => random);
        const ceiling = Math.min(DEFAULT_RETRY.maxDelayMs, DEFAULT_RETRY.baseDelayMs * 2 ** (retry - 1));
        return delay >= ceiling / 2 - 1 && delay <= ceiling && delay <= DEFAULT_RETRY.maxDelayMs;
      }),
    );
    expect(retryDelayMs(1, DEFAULT_RETRY, undefined, () => 1)).toBe(DEFAULT_RETRY.baseDelayMs);
    expect(retryDelayMs(1, DEFAULT_RETRY, 2, () => 0)).toBe(2_000);
    expect(retryDelayMs(1, DEFAULT_RETRY, 3_600, () => 1)).toBe(DEFAULT_RETRY.maxDelayMs);
  });

  it('spreads the callers a Retry-After sent back together: never sooner than asked (below the cap), up to half as long again', () => {
    // Every caller refused at one moment (a busy account's 503 ACCOUNT_BUSY, an outage's end) is told the same
    // Retry-After; waiting exactly that long, they all came back at once and were refused together again.
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3_600 }), fc.double({ min: 0, max: 1, noNaN: true }), (seconds, random) => {
        const delay = retryDelayMs(1, DEFAULT_RETRY, seconds, () => random);
        const asked = seconds * 1_000;
        const earliest = asked <= DEFAULT_RETRY.maxDelayMs ? asked : DEFAULT_RETRY.maxDelayMs * 0.75;
        return delay <= DEFAULT_RETRY.maxDelayMs && delay >= earliest && delay <= Math.max(asked * 1.5, asked + 500);
      }),
    );
    const spread = (seconds: number) => retryDelayMs(1, DEFAULT_RETRY, seconds, () => 1) - retryDelayMs(1, DEFAULT_RETRY, seconds, () => 0);
    expect(spread(0)).toBe(500);
    expect(spread(2)).toBe(1_000);
    expect(spread(3_600)).toBe(DEFAULT_RETRY.maxDelayMs / 4);
    expect(retryDelayMs(1, DEFAULT_RETRY, 4, () => 0)).toBe(4_000); // never sooner than asked, within the cap
    expect(retryDelayMs(1, DEFAULT_RETRY, 5, () => 0)).toBe(5_000);
  });
});
