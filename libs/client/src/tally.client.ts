import createClient, { type Client } from 'openapi-fetch';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { components, paths } from './tally-api.generated';
import { DEFAULT_RETRY, isRetryableStatus, retryAfterSeconds, retryDelayMs, sendWithRetries, sleep, type RetryOptions } from './retry.schedule';
import { HoldPlacementError, insufficientCredits, OUTCOME_UNKNOWN, TallyError, type InsufficientCredits } from './tally.errors';

type Schemas = components['schemas'];
export type Balance = Schemas['BalanceResponseDto'];
export type PlacedHold = Schemas['PlacedHoldDto'];
export type ReleasedHold = Schemas['ReleaseHoldResponseDto'];
/** What a portal token is minted with: lifetime, purchase right, the product's links, the page's time zone. */
export type PortalTokenOptions = Schemas['MintPortalTokenRequest'];
/** A minted portal token: the token, its expiry and rights, and the credits page URL with it in the fragment. */
export type PortalToken = Schemas['PortalTokenResponseDto'];
/** What a portal token grants (`GET /v1/portal/session`). */
export type PortalSession = Schemas['PortalSessionDto'];
/** A refund of a usage debit (a correction): `{idempotencyKey, amount?, reason, restoreExpired?}`. */
export type RefundRequest = Schemas['RefundUsageRequest'];
/** What a refund gave back, where to, and the balance after it. */
export type UsageRefund = Schemas['UsageRefundedResponseDto'];
/** A void of a grant or purchase (a correction): `{idempotencyKey, reason}`. */
export type VoidRequest = Schemas['VoidGrantRequest'];
/** What a void removed, and the balance after it. */
export type GrantVoid = Schemas['GrantVoidedResponseDto'];
/** What a piece of work used (`{ feature: 'chat', model, inputTokens, outputTokens }`), priced by Tally's rate card. */
export type Usage = Omit<Schemas['UsageRecordedDto'], 'holdId'>;
/** A usage event; the client fills in `id` (the idempotency key) and `occurredAt` (now) when they are not given. */
export type UsageEvent = Omit<Schemas['UsageEventRequest'], 'id' | 'occurredAt'> & { id?: string; occurredAt?: string };
/** The ingest's answer plus the ids the events were sent with (generated ones included). */
export type UsageReport = Schemas['RecordUsageResult'] & { ids: string[] };
/** How much an action may cost: credits as a decimal string, or a usage estimate Tally prices. */
export type Estimate = { amount: string } | { usage: Usage };
export interface HoldOptions {
  /**
   * The hold's idempotency key (generated when not given): placing it again with the same id places nothing new.
   * At most 121 characters with `withHold`, whose settling usage id is `settle-<holdId>` (128 at most).
   */
  holdId?: string;
  ttlSeconds?: number;
}

export type Authorization = { ok: true; required: string; available: string; unlimited?: boolean; hold?: PlacedHold } | InsufficientCredits;
export type Hold = { ok: true; required: string; available: string; hold: PlacedHold } | InsufficientCredits;
export type HeldWork = { ok: true; hold: PlacedHold; usage: Usage; settled: UsageReport } | InsufficientCredits;

/**
 * One frame of the live balance stream (`GET …/balance/stream`, server-sent `event: balance`): the balance read
 * model as the ledger projects it. The OpenAPI document describes the stream only as text, so this shape is kept
 * here by hand (the e2e test reads it from the real service).
 */
export interface LiveBalance {
  accountId: string;
  /** The account stream's version; frames only ever move forward. */
  streamVersion: number;
  available: string;
  allowance: string;
  promotional: string;
  purchased: string;
  held: string;
  overdraft: string;
  allocation: string;
  usedThisCycle: string;
  cycleId: string | null;
  cycleStart: string | null;
  cycleEnd: string | null;
  planId: string | null;
  /** An unlimited plan: nothing is counted against `available` (show "Unlimited", not the number). */
  unlimited: boolean;
  updatedAt: string;
}

export interface TallyClientOptions {
  /** A service API key (`Authorization: Bearer <key>`), with the scopes of what you call (usage:write, holds:write, accounts:read, portal:mint, …; README "API"). */
  apiKey: string;
  /** Where each service answers; behind one gateway give the same URL to each. */
  urls: { usageIngest: string; ledger: string; subscriptionCycle?: string; notification?: string };
  /** Bounded retries of network failures and 5xx/408/429 answers (Retry-After honoured); every retry resends the same keys. */
  retry?: Partial<RetryOptions>;
  /**
   * How long one attempt waits for the answer to begin (20 s by default, beyond the ~16 s usage-ingest may take to
   * answer 503 when its broker stopped answering): a server that accepted the connection and froze fails the attempt
   * (retried, then NETWORK_ERROR) instead of holding the caller for fetch's five minutes. The live balance stream's
   * frames are not timed (it waits for changes); its opening is.
   */
  timeoutMs?: number;
}

/** A live balance stream silent this long is taken for dead and opened again: three of the ledger's 15 s heartbeats. */
export const STREAM_STALL_MS = 45_000;

/** The longest wait before a live balance stream is opened again (the usual retry backoff, up to this). */
const STREAM_RECONNECT_MAX_DELAY_MS = 30_000;

/** The shortest: a client whose retry backoff is 0 would open streams in a tight loop against a server that is down. */
const STREAM_RECONNECT_MIN_DELAY_MS = 100;

/** TallyClientOptions.timeoutMs by default. */
export const DEFAULT_TIMEOUT_MS = 20_000;

/** fetch, failing an attempt whose answer has not begun within `timeoutMs` (a TimeoutError: retried, unlike an abort). */
function fetchWithin(timeoutMs: number): (request: Request) => Promise<Response> {
  return async (request) => {
    // The caller's own abort (request.signal) or the timeout, whichever comes first (no AbortSignal.any: Node ≥ 20.3).
    const either = new AbortController();
    const callerAborted = () => either.abort(request.signal.reason);
    if (request.signal.aborted) callerAborted();
    else request.signal.addEventListener('abort', callerAborted, { once: true });
    const timer = setTimeout(() => either.abort(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' })), timeoutMs);
    try {
      return await fetch(request, { signal: either.signal }); // the caller's abort still ends the body later (a stream)
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * A `reportUsageBatch` (or `reportUsage`) that failed, after or before some of its requests were accepted: `events`
 * are the events as sent (ids and timestamps fixed, generated ones included) and `reported` what was accepted before
 * the failure. Resend `events` (the refused one corrected, `issues` name it) and the ones already accepted count as
 * duplicates: nothing is charged twice. New ids would charge the accepted events again.
 *
 * The refused fields (`events.N.…`) and indexes (`details.indexes`) count in `events`, the whole list, not in the one
 * request that failed (`cause` has the answer as it came).
 */
export class UsageReportError extends TallyError {
  constructor(
    cause: TallyError,
    readonly events: (UsageEvent & { id: string; occurredAt: string })[],
    readonly reported: UsageReport,
    /**
     * Where the failed request's events start in `events`, and whether it sent one event alone (its fields name no
     * index); absent when the request was the whole list (its answer is kept as it came).
     */
    request?: { offset: number; alone: boolean },
  ) {
    super(cause.status, cause.code, cause.message, request ? inWholeList(cause.details, request) : cause.details, { cause });
  }
}

/** An answer's details with the request's event fields and indexes counted in the whole list. */
function inWholeList(details: TallyError['details'], { offset, alone }: { offset: number; alone: boolean }): TallyError['details'] {
  const field = (name: string): string => {
    if (alone) return name === '' ? `events.${offset}` : `events.${offset}.${name}`;
    const indexed = /^events\.(\d+)(.*)$/s.exec(name);
    return indexed ? `events.${Number(indexed[1]) + offset}${indexed[2]}` : name;
  };
  if (Array.isArray(details)) return details.map((issue) => (typeof issue.field === 'string' ? { ...issue, field: field(issue.field) } : issue));
  if (details === null || typeof details !== 'object') return details;
  const { field: named, indexes } = details as { field?: unknown; indexes?: unknown };
  return {
    ...details,
    ...(typeof named === 'string' && { field: field(named) }),
    ...(Array.isArray(indexes) && { indexes: indexes.map((index) => (typeof index === 'number' ? index + offset : index)) }),
  };
}

/** The most events one POST /v1/usage-events takes (UsageEventBatchRequest.events.maxItems). */
export const USAGE_BATCH_LIMIT = 1000;

/**
 * The largest request body the client sends to `POST /v1/usage-events`: half of usage-ingest's default BODY_LIMIT
 * (2 MiB), which refuses a larger body with 413 (not retried). An event alone is at most ~60 KB (its labels bounded).
 */
export const USAGE_BATCH_BYTES = 1024 * 1024;

/**
 * Consecutive events in requests of at most USAGE_BATCH_LIMIT events and USAGE_BATCH_BYTES of JSON, in order, each
 * with its request body: every event is written as JSON once, to measure it and to send it.
 */
function usageChunks<T>(events: T[], limit = USAGE_BATCH_LIMIT, maxBytes = USAGE_BATCH_BYTES): { events: T[]; json: string }[] {
  const chunks: { events: T[]; json: string }[] = [];
  let chunk: T[] = [];
  let texts: string[] = [];
  let bytes = 0;
  const close = () => chunks.push({ events: chunk, json: chunk.length === 1 ? texts[0] : `{"events":[${texts.join(',')}]}` });
  for (const event of events) {
    const text = JSON.stringify(event);
    const size = Buffer.byteLength(text) + 1; // and its comma
    if (chunk.length > 0 && (chunk.length >= limit || bytes + size > maxBytes - BATCH_ENVELOPE_BYTES)) {
      close();
      chunk = [];
      texts = [];
      bytes = 0;
    }
    chunk.push(event);
    texts.push(text);
    bytes += size;
  }
  if (chunk.length > 0) close();
  return chunks;
}

/** The batch size a 413 BATCH_TOO_LARGE names (`details.limit`, usage-ingest's MAX_BATCH), when below what was sent. */
function lowerBatchLimit(error: TallyError, sent: number): number | undefined {
  if (error.status !== 413 || error.code !== 'BATCH_TOO_LARGE') return undefined;
  const limit = (error.details as { limit?: unknown } | undefined)?.limit;
  return typeof limit === 'number' && Number.isInteger(limit) && limit >= 1 && limit < sent ? limit : undefined;
}

/**
 * A body size below this request's when usage-ingest refused its body as too large (413 PAYLOAD_TOO_LARGE: a
 * BODY_LIMIT configured below the client's 1 MiB; the answer names no limit): half of it, so a request of more than one
 * event is split. Undefined for any other answer, or a single event (nothing smaller to send).
 */
function lowerBatchBytes(error: TallyError, chunk: { events: unknown[]; json: string }): number | undefined {
  if (error.status !== 413 || error.code !== 'PAYLOAD_TOO_LARGE' || chunk.events.length < 2) return undefined;
  return Math.floor(Buffer.byteLength(chunk.json) / 2);
}

/** `{"events":[` and `]}` around a batch's events. */
const BATCH_ENVELOPE_BYTES = '{"events":[]}'.length;

/** The longest hold id `withHold` can settle: its usage id, `settle-<holdId>`, takes at most 128 characters. */
export const MAX_SETTLED_HOLD_ID_LENGTH = 128 - 'settle-'.length;

/** How many caller-given usage ids a client remembers the first time of (TallyClient.sentTimes): a few bytes each. */
const SENT_TIME_MEMORY = 10_000;

/**
 * The typed client of the Tally API for a product service. `api` holds the generated, fully typed openapi-fetch
 * clients of each service for anything the helpers do not cover.
 */
export class TallyClient {
  readonly api: { usageIngest: Client<paths>; ledger: Client<paths>; subscriptionCycle?: Client<paths>; notification?: Client<paths> };
  private readonly retry: RetryOptions;
  /**
   * The time each usage event with a caller-given id (a settle's included) and no `occurredAt` was first sent with,
   * by account and id (the last SENT_TIME_MEMORY of them): usage-ingest keeps an id it could not produce reserved with
   * the event's content, so reporting it again after a failure must send the very same event, or the id is refused
   * as used with other content (409) and the work is never charged. A process that restarts forgets them: a caller
   * that reports again after its own restart gives `occurredAt` itself.
   */
  private readonly sentTimes = new Map<string, string>();
  /** Events per usage request: the contract's 1000, or usage-ingest's lower MAX_BATCH once it refused a batch over it. */
  private batchLimit = USAGE_BATCH_LIMIT;
  private batchBytes = USAGE_BATCH_BYTES;

  constructor(private readonly options: TallyClientOptions) {
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    const fetch = fetchWithin(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const client = (baseUrl: string) => createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${options.apiKey}` }, fetch });
    const { usageIngest, ledger, subscriptionCycle, notification } = options.urls;
    this.api = {
      usageIngest: client(usageIngest),
      ledger: client(ledger),
      subscriptionCycle: subscriptionCycle === undefined ? undefined : client(subscriptionCycle),
      notification: notification === undefined ? undefined : client(notification),
    };
  }

  /** Reports one usage event (retried with the same id, so it is charged once). */
  reportUsage(event: UsageEvent): Promise<UsageReport> {
    return this.reportUsageBatch([event]);
  }

  /**
   * Reports usage events, in requests of at most 1000 events and 1 MiB of JSON (USAGE_BATCH_BYTES). Ids and
   * timestamps are fixed before the first attempt, so a retry after a lost answer resends the same events and the
   * ingest counts them as duplicates, never twice. More than that is several requests, each all or nothing: a failure throws a `UsageReportError` carrying the
   * events as sent and what was accepted before it, to resend as they are.
   */
  async reportUsageBatch(events: UsageEvent[]): Promise<UsageReport> {
    const now = new Date().toISOString();
    const keyed = events.map((event) => ({ ...event, id: event.id ?? newId('usage'), occurredAt: event.occurredAt ?? this.firstSentTime(event, now) }));
    const report: UsageReport = { accepted: 0, duplicates: 0, duplicateIds: [], ids: keyed.map((event) => event.id) };
    let offset = 0;
    const chunks = usageChunks(keyed, this.batchLimit, this.batchBytes);
    for (let chunk = chunks.shift(); chunk; chunk = chunks.shift()) {
      const body = chunk.events.length === 1 ? chunk.events[0] : { events: chunk.events };
      try {
        const { data, error, response } = await sendWithRetries(
          () => this.api.usageIngest.POST('/v1/usage-events', { body, bodySerializer: () => chunk.json }),
          this.retry,
        );
        if (!data) throw TallyError.fromAnswer(response.status, error);
        report.accepted += data.accepted;
        report.duplicates += data.duplicates;
        report.duplicateIds.push(...data.duplicateIds);
      } catch (error) {
        // usage-ingest configured with a lower MAX_BATCH: this request's events again in batches it takes (nothing of
        // a refused batch was accepted), and every later request too.
        const limit = error instanceof TallyError ? lowerBatchLimit(error, chunk.events.length) : undefined;
        if (limit !== undefined) {
          this.batchLimit = limit;
          chunks.unshift(...usageChunks(chunk.events, limit, this.batchBytes));
          continue;
        }
        // A body over its BODY_LIMIT: this request's events again in requests half its size, until one is taken.
        const bytes = error instanceof TallyError ? lowerBatchBytes(error, chunk) : undefined;
        if (bytes !== undefined) {
          this.batchBytes = Math.min(this.batchBytes, bytes);
          chunks.unshift(...usageChunks(chunk.events, this.batchLimit, this.batchBytes));
          continue;
        }
        if (error instanceof TallyError) {
          throw new UsageReportError(error, keyed, report, chunk.events.length === keyed.length ? undefined : { offset, alone: chunk.events.length === 1 });
        }
        throw error;
      }
      offset += chunk.events.length;
    }
    return report;
  }

  /**
   * May this account spend this much now? With `hold`, also reserves it (see `placeHold`); a failure is then a
   * `HoldPlacementError` carrying the hold's id.
   */
  async authorize(accountId: string, estimate: Estimate, hold?: HoldOptions): Promise<Authorization> {
    const holdId = hold ? (hold.holdId ?? newId('hold')) : undefined;
    const body = { ...estimate, ...(hold && holdId !== undefined && { hold: { holdId, ttlSeconds: hold.ttlSeconds } }) };
    let mayBePlaced = false; // an attempt whose outcome is unknown: it may have placed the hold
    try {
      const { data, error, response } = await sendWithRetries(
        () => this.api.ledger.POST('/v1/accounts/{accountId}/authorizations', { params: { path: { accountId } }, body }),
        this.retry,
        undefined,
        (status) => void (mayBePlaced ||= OUTCOME_UNKNOWN.has(status)),
      );
      if (data) return { ok: true, required: data.required, available: data.available, unlimited: data.unlimited, hold: data.hold };
      if (response.status === 402 && error?.code === 'INSUFFICIENT_CREDITS') return insufficientCredits(error);
      throw TallyError.fromAnswer(response.status, error);
    } catch (error) {
      if (holdId !== undefined && error instanceof TallyError) throw new HoldPlacementError(error, holdId, mayBePlaced); // every attempt's status, the last included
      throw error;
    }
  }

  /** Reserves an estimate until it is settled by a usage event naming the hold, released, or its TTL runs out. */
  async placeHold(accountId: string, estimate: Estimate, hold: HoldOptions = {}): Promise<Hold> {
    const holdId = hold.holdId ?? newId('hold');
    const result = await this.authorize(accountId, estimate, { ...hold, holdId });
    if (!result.ok) return result;
    if (!result.hold) {
      throw new HoldPlacementError(new TallyError(200, 'HOLD_NOT_PLACED', 'The authorization answered without the hold it was asked to place'), holdId);
    }
    return { ok: true, required: result.required, available: result.available, hold: result.hold };
  }

  /**
   * The time to send an event without one with: `now` for a new id; for a caller-given id, the time it was first
   * sent with (remembered as the most recent).
   */
  private firstSentTime(event: UsageEvent, now: string): string {
    if (event.id === undefined) return now;
    const key = `${event.accountId}\u0000${event.id}`;
    const occurredAt = this.sentTimes.get(key) ?? now;
    this.sentTimes.delete(key);
    this.sentTimes.set(key, occurredAt);
    if (this.sentTimes.size > SENT_TIME_MEMORY) this.sentTimes.delete(this.sentTimes.keys().next().value as string);
    return occurredAt;
  }

  /** Settles a hold with what the work actually used (one usage event naming the hold, id `settle-<holdId>` by default). */
  settleHold(accountId: string, holdId: string, usage: Usage, event: { id?: string; occurredAt?: string } = {}): Promise<UsageReport> {
    return this.reportUsage({ ...usage, ...event, id: event.id ?? `settle-${holdId}`, accountId, holdId });
  }

  /** Gives a hold's credits back (idempotent: a hold already settled or released releases "0"). */
  async releaseHold(accountId: string, holdId: string): Promise<ReleasedHold> {
    const { data, error, response } = await sendWithRetries(
      () => this.api.ledger.DELETE('/v1/accounts/{accountId}/holds/{holdId}', { params: { path: { accountId, holdId } } }),
      this.retry,
    );
    if (!data) throw TallyError.fromAnswer(response.status, error);
    return data;
  }

  /**
   * Hold, work, settle: reserves `estimate`, runs `work` (e.g. streaming an answer) and settles the hold with the
   * usage it returns. If the work or the settling throws, the hold is released and the error rethrown, so a hold is
   * never left behind (if even the release fails, both errors are thrown together; the hold's TTL is the backstop).
   */
  async withHold(accountId: string, estimate: Estimate, work: (hold: PlacedHold) => Promise<Usage>, hold: HoldOptions = {}): Promise<HeldWork> {
    const holdId = hold.holdId ?? newId('hold');
    if (holdId.length > MAX_SETTLED_HOLD_ID_LENGTH) {
      throw new TallyError(400, 'VALIDATION_FAILED', 'The hold id is too long to settle', [
        { field: 'holdId', reason: `must be at most ${MAX_SETTLED_HOLD_ID_LENGTH} characters: its settle id is settle-<holdId>, at most 128` },
      ]);
    }
    let placed: Hold;
    try {
      placed = await this.placeHold(accountId, estimate, { ...hold, holdId });
    } catch (error) {
      // An attempt got no answer, or a 500/502/503/504: the hold may have been placed all the same, so it is released
      // (one never placed releases "0"); when every attempt was refused otherwise (a 4xx) nothing was placed. If even
      // the release fails, the placing's own error is thrown, as it was: the hold, if it was placed, ends at its TTL.
      if (error instanceof HoldPlacementError && error.mayBePlaced) await this.releaseHold(accountId, holdId).catch(() => undefined);
      throw error;
    }
    if (!placed.ok) return placed;
    try {
      const usage = await work(placed.hold);
      const settled = await this.settleHold(accountId, placed.hold.holdId, usage);
      return { ok: true, hold: placed.hold, usage, settled };
    } catch (error) {
      try {
        await this.releaseHold(accountId, placed.hold.holdId);
      } catch (releaseError) {
        throw new AggregateError([error, releaseError], `The work failed and hold ${placed.hold.holdId} could not be released (it expires at ${placed.hold.expiresAt})`);
      }
      throw error;
    }
  }

  /** The account's balance now (the read model; a usage event shows here within moments). */
  async balance(accountId: string): Promise<Balance> {
    const { data, error, response } = await sendWithRetries(
      () => this.api.ledger.GET('/v1/accounts/{accountId}/balance', { params: { path: { accountId } } }),
      this.retry,
    );
    if (!data) throw TallyError.fromAnswer(response.status, error);
    return data;
  }

  /**
   * The live balance: the balance now, then again after every change, until `signal` aborts (the iteration then simply
   * ends) or the loop is left. It comes back by itself when the server ends it (a deploy of the ledger), the connection
   * breaks, or it falls silent for `stallMs` (the ledger sends a heartbeat every 15 s; a connection a NAT or a load
   * balancer dropped without a word sends nothing): after a backoff it opens another, which begins with the balance
   * then, and yields only frames newer than the last one it yielded (a new stream's first frame at a lower version
   * too: the database went back in time). A refusal that may pass (429 too many streams, 503, 5xx) is waited out the
   * same way, its Retry-After honoured; any other refusal (401, 403, 404) ends the iteration with a TallyError, and so
   * does a ledger never reached at all within the client's retry attempts (NETWORK_ERROR: a wrong URL, the network
   * down from the start). Once a stream has been open, an outage is waited out however long it lasts.
   */
  async *balanceStream(accountId: string, { signal, stallMs = STREAM_STALL_MS }: { signal?: AbortSignal; stallMs?: number } = {}): AsyncGenerator<LiveBalance> {
    const seen = { newest: -1, yielded: false };
    const backoff = { ...this.retry, maxDelayMs: Math.max(this.retry.maxDelayMs, STREAM_RECONNECT_MAX_DELAY_MS) };
    let everConnected = false;
    for (let attempt = 1; !signal?.aborted; attempt++) {
      seen.yielded = false;
      const ended = yield* this.balanceStreamOnce(accountId, signal, stallMs, seen);
      if (signal?.aborted) return;
      everConnected ||= !('unreached' in ended);
      // Never reached at all (a wrong URL, DNS, TLS, the network down from the start): said after the client's
      // attempts, as any call would; once a stream has been open, an outage is waited out for as long as it lasts.
      if (!everConnected && 'unreached' in ended && attempt >= this.retry.attempts) {
        throw new TallyError(0, 'NETWORK_ERROR', `Tally could not be reached after ${attempt} attempts`, undefined, { cause: ended.unreached });
      }
      if (seen.yielded) attempt = 1;
      const delay = Math.max(STREAM_RECONNECT_MIN_DELAY_MS, retryDelayMs(attempt, backoff, ended.retryAfterSeconds));
      await sleep(delay, signal).catch(() => undefined);
    }
  }

  /**
   * One connection of balanceStream: yields its frames newer than `seen.newest` and returns when it ends, breaks,
   * falls silent for `stallMs`, or is refused with a status that may pass (its Retry-After); throws on any other refusal.
   * Not reached at all (no answer of any kind): it returns `unreached`, the failure.
   */
  private async *balanceStreamOnce(
    accountId: string,
    signal: AbortSignal | undefined,
    stallMs: number,
    seen: { newest: number; yielded: boolean },
  ): AsyncGenerator<LiveBalance, { retryAfterSeconds?: number; unreached?: unknown }> {
    let unreached: unknown;
    const opened = await this.api.ledger
      .GET('/v1/accounts/{accountId}/balance/stream', { params: { path: { accountId } }, parseAs: 'stream', signal })
      .catch((failure: unknown) => void (unreached = failure)); // not reached (or aborted): the caller backs off, or stops
    if (!opened) return { unreached };
    const { error, response } = opened;
    if (!response.ok || !response.body) {
      if (isRetryableStatus(response.status)) {
        await response.body?.cancel().catch(() => undefined);
        return { retryAfterSeconds: retryAfterSeconds(response) };
      }
      throw TallyError.fromAnswer(response.status, error);
    }

    const frames: LiveBalance[] = [];
    const parser = createParser({ onEvent: (message: EventSourceMessage) => message.event === 'balance' && frames.push(JSON.parse(message.data)) });
    const decoder = new TextDecoder();
    const reader = response.body.getReader();
    let seenThisConnection = false;
    // Silent for stallMs: cancelled, which ends the pending read as if the server had closed the stream.
    const stalled = () => void reader.cancel().catch(() => undefined);
    let stall = setTimeout(stalled, stallMs);
    try {
      for (;;) {
        const chunk = await reader.read().catch(() => ({ done: true as const, value: undefined }));
        if (chunk.done) return {};
        clearTimeout(stall);
        stall = setTimeout(stalled, stallMs);
        parser.feed(decoder.decode(chunk.value, { stream: true }));
        for (const frame of frames.splice(0)) {
          // A stream's first frame is the balance then: yielded unless it is the one last yielded, even at a lower
          // version (a database gone back in time); later frames only move forward.
          const first = !seenThisConnection;
          seenThisConnection = true;
          if (first ? frame.streamVersion === seen.newest : frame.streamVersion <= seen.newest) continue;
          seen.newest = frame.streamVersion;
          seen.yielded = true;
          yield frame;
        }
      }
    } finally {
      clearTimeout(stall);
      await reader.cancel().catch(() => undefined);
    }
  }

  /**
   * Mints a portal token for the credits page (needs a key with the portal:mint scope): read-only access to this one
   * account for a browser, for `ttlSeconds` (60-86,400, default 3,600); with `purchase`, the page may offer buying
   * credits through `checkoutUrl`. Hand the browser `pageUrl` (the token rides in its fragment) or `token`; never
   * your API key. Retried like every call; a 503 PORTAL_DISABLED means the ledger has no PORTAL_TOKEN_SECRET.
   */
  async mintPortalToken(accountId: string, options: PortalTokenOptions = {}): Promise<PortalToken> {
    const { data, error, response } = await sendWithRetries(
      () => this.api.ledger.POST('/v1/accounts/{accountId}/portal-tokens', { params: { path: { accountId } }, body: options }),
      this.retry,
    );
    if (!data) throw TallyError.fromAnswer(response.status, error);
    return data;
  }

  /**
   * Refunds a usage debit in full (no `amount`) or in part, for support tooling (a correction; needs corrections:write).
   * Idempotent by `idempotencyKey`: retried with the same body, it refunds once and answers the first result
   * (`duplicate: true`). Refused: 404 USAGE_NOT_FOUND, 409 REFUND_EXCEEDS_DEBIT (details.refundable), 409
   * IDEMPOTENCY_CONFLICT. The README's "Corrections" has the rules (buckets, expiry, overdraft).
   */
  async refundUsage(accountId: string, usageId: string, refund: RefundRequest): Promise<UsageRefund> {
    const { data, error, response } = await sendWithRetries(
      () => this.api.ledger.POST('/v1/accounts/{accountId}/usage/{usageId}/refunds', { params: { path: { accountId, usageId } }, body: refund }),
      this.retry,
    );
    if (!data) throw TallyError.fromAnswer(response.status, error);
    return data;
  }

  /**
   * Voids what is left of a grant or a purchase (`grant:<key>`, `purchase:<paymentReference>`); what was spent stays
   * spent. Idempotent by `idempotencyKey`. Refused: 404 GRANT_NOT_FOUND, 409 ALREADY_VOIDED or GRANT_NOT_VOIDABLE.
   */
  async voidGrant(accountId: string, grantId: string, request: VoidRequest): Promise<GrantVoid> {
    const { data, error, response } = await sendWithRetries(
      () => this.api.ledger.POST('/v1/accounts/{accountId}/grants/{grantId}/void', { params: { path: { accountId, grantId } }, body: request }),
      this.retry,
    );
    if (!data) throw TallyError.fromAnswer(response.status, error);
    return data;
  }
}

/** An id matching the API's id pattern ([A-Za-z0-9._:@-]{1,128}). */
function newId(prefix: string): string {
  return `${prefix}-${globalThis.crypto.randomUUID()}`;
}
