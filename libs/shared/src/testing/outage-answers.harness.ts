import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from './wait-for.harness';
/** One HTTP answer seen while a dependency was restarted: when it was asked, what came back. */
export interface OutageAnswer {
  at: number;
  method: string;
  path: string;
  status: number;
  code?: string;
  retryAfter: string | null;
  /** How long the answer took. */
  ms: number;
  /** The answer's body, as sent. */
  body: string;
}

/**
 * What a refusal sent to a client must not carry: a network address (a broker's or the database's host and port) or a
 * socket error's code, which a driver's own message would pass on. Operators read those in the logs, not clients.
 */
const INTERNALS = /\b\d{1,3}(?:\.\d{1,3}){3}:\d+\b|\blocalhost:\d+\b|\bE(?:CONNREFUSED|CONNRESET|TIMEDOUT|HOSTUNREACH|NETUNREACH|PIPE|NOTFOUND|AI_AGAIN)\b/;

/**
 * Records every answer of a service under test while its database or broker is restarted, and what a client must
 * see meanwhile: a retryable 503 with Retry-After and a stable code, never another 5xx, never a hang.
 */
export class OutageAnswers {
  readonly answers: OutageAnswer[] = [];
  /** Requests that got no answer (timeout, connection refused): the service hung or died. */
  readonly failures: string[] = [];

  constructor(
    private readonly base: string,
    private readonly apiKey: string,
    private readonly timeoutMs = 10_000,
  ) {}

  /** Sends one JSON request; resolves with its status (0 when there was no answer). */
  async request(method: string, path: string, body?: unknown, apiKey = this.apiKey): Promise<number> {
    const started = Date.now();
    try {
      const response = await fetch(`${this.base}${path}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const text = await response.text();
      const parsed = (() => {
        try {
          return JSON.parse(text) as { code?: string };
        } catch {
          return {};
        }
      })();
      this.answers.push({ at: started, method, path, status: response.status, code: parsed.code, retryAfter: response.headers.get('retry-after'), ms: Date.now() - started, body: text });
      return response.status;
    } catch (error) {
      this.failures.push(`${method} ${path}: ${(error as Error).message} after ${Date.now() - started} ms`);
      return 0;
    }
  }

  /**
   * Answers that broke the rule: any 5xx but 503, any 503 without Retry-After or without one of the stable codes, and
   * any refusal naming an internal address or a socket error (see INTERNALS; a 2xx may echo the client's own URLs).
   */
  wrong(codes: string[] = ['DEPENDENCY_UNAVAILABLE']): OutageAnswer[] {
    return this.answers.filter(
      (a) => (a.status >= 500 && a.status !== 503) || (a.status === 503 && (a.retryAfter === null || !codes.includes(a.code ?? ''))) || (a.status >= 400 && INTERNALS.test(a.body)),
    );
  }

  /** Answers to requests sent between `from` and `until`, `marginMs` inside both ends. */
  between(from: number, until: number, marginMs = 500): OutageAnswer[] {
    return this.answers.filter((a) => a.at >= from + marginMs && a.at <= until - marginMs);
  }

  /**
   * What a test asserts after an outage, in one value: requests that got no answer, answers that broke the rule
   * (see `wrong`), and answers other than 503 while the dependency was down. All three are empty when the service
   * rode it out; `duringOutage` counts the answers in that window (a test expects some).
   */
  outcome(timeline: Pick<OutageTimeline, 'downFrom' | 'downUntil'>, codes?: string[]) {
    const duringOutage = this.between(timeline.downFrom, timeline.downUntil);
    return {
      failures: this.failures,
      wrong: this.wrong(codes),
      notUnavailableWhileDown: duringOutage.filter((a) => a.status !== 503),
      duringOutage: duringOutage.length,
    };
  }

  /** Milliseconds from `t` to the first 2xx answer asked at or after it (NaN if none). */
  firstOkAfter(t: number): number {
    return (this.answers.find((a) => a.at >= t && a.status < 300)?.at ?? NaN) - t;
  }
}

/** When each step of a PostgreSQL outage happened (ms since the epoch). */
export interface OutageTimeline {
  restartedAt: number;
  downFrom: number;
  downUntil: number;
  startedAt: number;
}

export interface PostgresOutageOptions {
  /** Load before the first fault (default 1.5 s). */
  warmupMs?: number;
  /** After the fast restart, before the stop (default 3 s). */
  afterRestartMs?: number;
  /** How long PostgreSQL stays down (default 5 s). */
  downMs?: number;
  /** After it is back, before the load stops (default 3 s). */
  afterStartMs?: number;
  /** Called as each step begins (e.g. to produce more messages then, or to check the process is alive). */
  onStep?: (step: 'warm' | 'restarted' | 'down' | 'started') => Promise<void> | void;
}

/**
 * The PostgreSQL outage every restart test puts a service through, under load: a fast restart (every session
 * terminated, 57P01), then the server down for a few seconds (connections refused), then back. Returns when each
 * step happened, for `OutageAnswers.between` and `firstOkAfter`.
 */
export async function postgresOutage(db: { restart(): Promise<void>; stop(): Promise<void>; start(): Promise<void> }, options: PostgresOutageOptions = {}): Promise<OutageTimeline> {
  const { warmupMs = 1_500, afterRestartMs = 3_000, downMs = 5_000, afterStartMs = 3_000, onStep } = options;
  await onStep?.('warm');
  await sleep(warmupMs);
  await db.restart();
  const restartedAt = Date.now();
  await onStep?.('restarted');
  await sleep(afterRestartMs);
  await db.stop();
  const downFrom = Date.now();
  await onStep?.('down');
  await sleep(downMs);
  const downUntil = Date.now();
  await db.start();
  const startedAt = Date.now();
  await onStep?.('started');
  await sleep(afterStartMs);
  return { restartedAt, downFrom, downUntil, startedAt };
}

/**
 * Runs `loops` concurrently until `stop()` is called; `stop()` resolves once every loop has finished its iteration.
 * Each loop gets `running()` to check between requests.
 */
export function loadWhile(...loops: ((running: () => boolean) => Promise<void>)[]): { stop: () => Promise<void> } {
  let on = true;
  const done = Promise.all(loops.map((loop) => loop(() => on)));
  return {
    stop: async () => {
      on = false;
      await done;
    },
  };
}

/**
 * What a client of a service under test knows about the requests it sent during an outage: the keys it got a 2xx
 * for (acknowledged: must be applied exactly once), and the ones it got anything else for (unsure: maybe applied,
 * maybe not), which it sends again with the same key until acknowledged, as a well-behaved client would.
 */
export class Acknowledgements<Key, Value = undefined> {
  readonly acked = new Map<Key, Value>();
  readonly unsure = new Map<Key, Value>();

  /** Files `key` under acked (2xx) or unsure (anything else), with what the test needs to check it later. */
  record(key: Key, status: number, value?: Value): void {
    (status >= 200 && status < 300 ? this.acked : this.unsure).set(key, value as Value);
  }

  /** Sends every unsure request again (same key) until each is acknowledged; fails after `timeoutMs`. */
  async resendUnsure(send: (key: Key, value: Value) => Promise<number>, timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => {
      for (const [key, value] of this.unsure) {
        const status = await send(key, value);
        if (status < 200 || status >= 300) return false;
        this.unsure.delete(key);
        this.acked.set(key, value);
      }
      return true;
    }, timeoutMs, 500);
  }
}
