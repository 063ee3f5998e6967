import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { balanceFrom, type Balance } from './credits.model';
import { usageQuery, type RangeChoice } from './usage-range.model';
import type { components } from '@tally/client';

/**
 * The ledger API as the credits page uses it, with the portal token as the bearer: the session (who, what rights,
 * which links), the balance and its live stream, usage, the history and the CSV export. Nothing else: a portal
 * token can read one account, never spend or mint.
 */
/** The API's own shapes, from the OpenAPI document (@tally/client's generated types: erased from the bundle). */
type Schemas = components['schemas'];
export type PortalSession = Schemas['PortalSessionDto'];
export type UsageSummary = Schemas['UsageSummaryDto'];
/** A usage summary as the page reads it: `inUtcInstead` when the ledger did not know the page's zone (UTC days). */
export type PortalUsage = UsageSummary & { inUtcInstead: boolean };
export type TransactionItem = Schemas['TransactionItemDto'];
export type TransactionPage = Schemas['TransactionPageDto'];

/** An answer other than 2xx, with the API's stable error code (`ACCOUNT_NOT_FOUND`, `UNAUTHORIZED`, …). */
export class PortalApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The request's field the ledger named (a 400's first `details[].field`), if any. */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'PortalApiError';
  }

  /** Nothing a retry mends: the token is refused or expired, or the account is not there. */
  get permanent(): boolean {
    return this.status === 400 || this.status === 401 || this.status === 403 || this.status === 404;
  }
}

type Fetch = typeof fetch;

/**
 * How long the balance stream may send nothing (the ledger sends a heartbeat every 15 s: SSE_HEARTBEAT_MS) before it is
 * taken for dead and opened again. A connection can die without closing (a laptop waking on another network, a NAT
 * entry expiring, a proxy buffering the stream): without this the page would read "Live" over a frozen balance.
 */
export const BALANCE_STREAM_STALL_MS = 45_000;

/** The stream sent nothing for the stall time: opened again like a dropped one. */
class StreamStalled extends Error {}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

export class PortalApi {
  private readonly fetch: Fetch;

  constructor(
    private readonly token: string,
    private readonly base = '',
    fetchImpl?: Fetch,
    private readonly streamStallMs = BALANCE_STREAM_STALL_MS,
  ) {
    this.fetch = fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
  }

  private url(path: string, query: Record<string, string> = {}): string {
    const search = new URLSearchParams(query).toString();
    return `${this.base}${path}${search ? `?${search}` : ''}`;
  }

  private account(accountId: string, rest = ''): string {
    return `/v1/accounts/${encodeURIComponent(accountId)}${rest}`;
  }

  private async request(path: string, query?: Record<string, string>, accept = 'application/json', signal?: AbortSignal): Promise<Response> {
    const response = await this.fetch(this.url(path, query), {
      headers: { authorization: `Bearer ${this.token}`, accept },
      cache: 'no-store',
      signal,
    });
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  private async json<T>(path: string, query?: Record<string, string>): Promise<T> {
    return (await (await this.request(path, query)).json()) as T;
  }

  session(): Promise<PortalSession> {
    return this.json<PortalSession>('/v1/portal/session');
  }

  async balance(accountId: string): Promise<Balance> {
    return balanceFrom(await this.json<unknown>(this.account(accountId, '/balance')));
  }

  /**
   * The usage of a range of whole days in `timeZone` (the one the page shows), counted by that zone's days; in UTC days
   * if the ledger does not know the zone (a browser's newer than its zone database): `inUtcInstead` says so.
   */
  async usage(accountId: string, range: RangeChoice, timeZone: string): Promise<PortalUsage> {
    const { answer, zone } = await inZoneOrUtc(timeZone, (asked) => this.json<UsageSummary>(this.account(accountId, '/usage'), usageQuery(range, asked)));
    return { ...answer, inUtcInstead: zone !== timeZone };
  }

  transactions(accountId: string, cursor?: string, limit = 20): Promise<TransactionPage> {
    return this.json<TransactionPage>(this.account(accountId, '/transactions'), { limit: String(limit), ...(cursor ? { cursor } : {}) });
  }

  /** The CSV of the range, downloaded with the bearer (a plain link could not send it), and the server's file name. */
  async exportCsv(accountId: string, range: RangeChoice, timeZone: string): Promise<{ blob: Blob; filename: string }> {
    const { answer: response } = await inZoneOrUtc(timeZone, (asked) => this.request(this.account(accountId, '/usage/export'), usageQuery(range, asked), 'text/csv'));
    const disposition = response.headers.get('content-disposition') ?? '';
    const filename = /filename="([^"]+)"/.exec(disposition)?.[1] ?? `usage-${accountId}.csv`;
    return { blob: await response.blob(), filename };
  }

  /**
   * Follows `GET /balance/stream` until `signal` aborts: fetch (EventSource cannot send an Authorization header)
   * read through eventsource-parser; every `balance` event goes to `onBalance`. A dropped stream is opened again
   * after the server's `retry:` (3 s), doubling up to 30 s while it keeps failing; `onState` says which. So is one
   * that sent nothing, not even a heartbeat, for `streamStallMs` (BALANCE_STREAM_STALL_MS). A refused token or an
   * unknown account ends it with the error (a retry would not mend that). Each opening names the stream by one random
   * key (`streamKey`): the ledger drops the stream this one replaces, whose connection may have died without closing
   * and would otherwise hold one of the account's five stream slots for minutes.
   */
  async watchBalance(
    accountId: string,
    onBalance: (balance: Balance) => void,
    { signal, onState }: { signal: AbortSignal; onState?: (state: 'live' | 'reconnecting') => void },
  ): Promise<void> {
    let retryMs = 3000;
    let failures = 0;
    const streamKey = randomStreamKey();
    while (!signal.aborted) {
      try {
        const response = await this.request(this.account(accountId, '/balance/stream'), { streamKey }, 'text/event-stream', signal);
        if (!response.body) throw new PortalApiError(0, 'NO_STREAM', 'the balance stream has no body');
        onState?.('live');
        failures = 0;
        const parser = createParser({
          onEvent: (message: EventSourceMessage) => {
            if (message.event === 'balance') onBalance(balanceFrom(JSON.parse(message.data)));
          },
          onRetry: (ms: number) => (retryMs = Math.max(500, Math.min(ms, 30_000))),
        });
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        try {
          for (;;) {
            const { done, value } = await readWithin(reader, this.streamStallMs);
            if (done) break;
            parser.feed(decoder.decode(value, { stream: true }));
          }
        } finally {
          await reader.cancel().catch(() => undefined);
        }
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof PortalApiError && error.permanent) throw error;
      }
      if (signal.aborted) return;
      onState?.('reconnecting');
      await sleep(Math.min(retryMs * 2 ** Math.min(failures, 4), 30_000), signal);
      failures += 1;
    }
  }
}

/** 32 hex digits from the browser's random source (`crypto.randomUUID` needs a secure context; this does not). */
function randomStreamKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** The reader's next chunk, or StreamStalled when none comes within `ms`. */
function readWithin<T>(reader: ReadableStreamDefaultReader<T>, ms: number): Promise<ReadableStreamReadResult<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new StreamStalled(`the balance stream sent nothing for ${ms} ms`)), ms);
  });
  return Promise.race([reader.read(), stalled]).finally(() => clearTimeout(timer));
}

/** `ask` in `timeZone`, and again in UTC if the ledger refused the zone (400 naming `tz`); the answer and its zone. */
async function inZoneOrUtc<T>(timeZone: string, ask: (zone: string) => Promise<T>): Promise<{ answer: T; zone: string }> {
  try {
    return { answer: await ask(timeZone), zone: timeZone };
  } catch (error) {
    if (timeZone === 'UTC' || !(error instanceof PortalApiError && error.status === 400 && error.field === 'tz')) throw error;
    return { answer: await ask('UTC'), zone: 'UTC' };
  }
}

async function errorOf(response: Response): Promise<PortalApiError> {
  const body = (await response.json().catch(() => undefined)) as { code?: unknown; message?: unknown; details?: unknown } | undefined;
  const code = typeof body?.code === 'string' ? body.code : `HTTP_${response.status}`;
  const message = typeof body?.message === 'string' ? body.message : `The ledger answered ${response.status}.`;
  const field = Array.isArray(body?.details) ? (body.details[0] as { field?: unknown } | undefined)?.field : undefined;
  return new PortalApiError(response.status, code, message, typeof field === 'string' ? field : undefined);
}
