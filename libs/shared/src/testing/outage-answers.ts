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
}

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
      const parsed = (await response.json().catch(() => ({}))) as { code?: string };
      this.answers.push({ at: started, method, path, status: response.status, code: parsed.code, retryAfter: response.headers.get('retry-after'), ms: Date.now() - started });
      return response.status;
    } catch (error) {
      this.failures.push(`${method} ${path}: ${(error as Error).message} after ${Date.now() - started} ms`);
      return 0;
    }
  }

  /** Answers that broke the rule: any 5xx but 503, and any 503 without Retry-After or without one of the stable codes. */
  wrong(codes: string[] = ['DEPENDENCY_UNAVAILABLE']): OutageAnswer[] {
    return this.answers.filter((a) => (a.status >= 500 && a.status !== 503) || (a.status === 503 && (a.retryAfter === null || !codes.includes(a.code ?? ''))));
  }

  /** Answers to requests sent between `from` and `until`, `marginMs` inside both ends. */
  between(from: number, until: number, marginMs = 500): OutageAnswer[] {
    return this.answers.filter((a) => a.at >= from + marginMs && a.at <= until - marginMs);
  }

  /** Milliseconds from `t` to the first 2xx answer asked at or after it (NaN if none). */
  firstOkAfter(t: number): number {
    return (this.answers.find((a) => a.at >= t && a.status < 300)?.at ?? NaN) - t;
  }
}
