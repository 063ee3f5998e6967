import { setTimeout as sleep } from 'node:timers/promises';
import { Topics } from '@tally/contracts';
import { KafkaProducer } from '@tally/kafka';
import { Acknowledgements } from '@tally/testing';
import { API_KEY, type ChaosSystem, type ServiceName } from './chaos.harness';
import type { Step, UsageBody, Workload } from './workload.fixtures';

/** What the client needs of the system it drives: each service's base URL, a Kafka client, the webhook receiver. */
export type WorkloadTarget = Pick<ChaosSystem, 'kafkaClient'> & { service(name: ServiceName): { base: string }; receiver: { url: string } };

/** One HTTP answer (status 0: none — connection refused, reset or timed out). */
export interface Answer {
  /** When the request was sent, and when its answer came (or the client gave up). */
  at: number;
  answeredAt: number;
  service: ServiceName;
  method: string;
  path: string;
  status: number;
  code?: string;
  retryAfter: string | null;
  /** CYCLE_RENEWAL_PENDING's `details.cycleEnd`: the end of the cycle whose renewal the ledger waits for. */
  cycleEnd?: string;
  /** An authorization's `unlimited`: with a hold, nothing was reserved (the plan is unlimited). */
  unlimited?: boolean;
  /** Status 0 because the client gave up waiting (REQUEST_TIMEOUT_MS), not because the connection was refused or reset. */
  timedOut?: boolean;
}

/** A request the services refused although the workload meant it to succeed (a 4xx it did not expect). */
export interface Refusal {
  step: string;
  status: number;
  code?: string;
}

const REQUEST_TIMEOUT_MS = 10_000;

/**
 * Sends the workload as a crowd of well-behaved clients would: every request whose answer was lost (no answer,
 * 5xx, timeout, a Kafka send that failed) is "unsure" and sent again with the same idempotency key until it is
 * acknowledged (`Acknowledgements`). Every HTTP answer is recorded for invariant 7; the usage ids of acknowledged
 * requests are what invariant 1 checks.
 */
export class WorkloadClient {
  readonly answers: Answer[] = [];
  readonly refusals: Refusal[] = [];
  readonly acks = new Acknowledgements<string, Step>();
  /** Usage ids per acknowledged step (a duplicate id in several steps is one usage). */
  readonly kafkaFailures: { at: number; error: string }[] = [];
  /** Holds placed (authorization answered 200, or 409 HOLD_CLOSED to a retry: placed and closed since), of them on an unlimited plan (nothing reserved), and refused (402). */
  readonly holds = { placed: 0, refused: 0, unlimited: 0 };
  /** Grants and purchases the ledger acknowledged (2xx) and holds it placed, by key: what invariant 11 looks for in the store. */
  readonly accepted = new Map<string, Extract<Step, { kind: 'grant' | 'purchase' | 'hold' }>>();
  readonly sent = { usageMessages: 0, httpRequests: 0, kafkaSends: 0, resends: 0 };
  private readonly followUps: Step[] = [];
  /** Accounts the ledger has answered a command of (2xx, or a 402: it found the account). */
  private readonly knownAccounts = new Set<string>();
  private readonly producer: KafkaProducer;
  private retrying = false;

  constructor(
    private readonly system: WorkloadTarget,
    private readonly workload: Workload,
  ) {
    this.producer = new KafkaProducer(system.kafkaClient('chaos-workload'));
  }

  /** Usage ids in acknowledged steps, and in steps never acknowledged. */
  usageIds(): { acked: Set<string>; unsure: Set<string> } {
    const ids = (steps: Iterable<Step>) => new Set([...steps].flatMap((s) => (s.kind === 'usage-http' || s.kind === 'usage-kafka' ? s.events.map((e) => e.id) : [])));
    const acked = ids(this.acks.acked.values());
    const unsure = new Set([...ids(this.acks.unsure.values())].filter((id) => !acked.has(id)));
    return { acked, unsure };
  }

  /** Notification settings (email + webhook) and subscriptions of every account, before the load. */
  async setUp(): Promise<void> {
    const steps: Step[] = [];
    for (const account of this.workload.setup) {
      const settings = { email: `${account.accountId}@example.com`, webhookUrl: `${this.system.receiver.url}/${account.accountId}`, webhookSecret: `whsec_${Buffer.from(account.accountId.padEnd(32, '.')).toString('base64')}` };
      const { status } = await this.request('notification', 'PUT', `/v1/accounts/${account.accountId}/notification-settings`, settings);
      if (status !== 200) throw new Error(`notification settings of ${account.accountId}: ${status}`);
      if (account.planId) steps.push({ kind: 'upgrade', key: `subscribe-${account.accountId}`, accountId: account.accountId, planId: account.planId });
    }
    for (const step of steps) await this.send(step);
    await this.acks.resendUnsure((_key, step) => this.send(step), 60_000);
  }

  /**
   * Sends the steps paced at `eventsPerSecond` usage events, `concurrency` requests at a time, follow-ups (hold
   * settlements and releases) as they fall due, and unsure requests again every second; resolves once every step
   * was sent (not necessarily acknowledged: see `resendAllUnsure`).
   */
  async run(eventsPerSecond: number, concurrency: number, backlog: () => boolean = () => false): Promise<void> {
    const started = Date.now();
    const due: number[] = [];
    let events = 0;
    for (const step of this.workload.steps) {
      due.push(started + (events / eventsPerSecond) * 1000);
      if (step.kind === 'usage-http' || step.kind === 'usage-kafka') events += step.events.length;
    }
    let next = 0;
    const worker = async () => {
      while (next < this.workload.steps.length) {
        const index = next++;
        const wait = due[index] - Date.now();
        if (wait > 0) await sleep(wait);
        // Back-pressure: a fault run checks what happens to the load, not how much the ledger can take.
        while (backlog()) await sleep(250);
        await this.send(this.workload.steps[index]);
        const followUp = this.followUps.shift();
        if (followUp) await this.send(followUp);
      }
    };
    this.retrying = true;
    const retries = this.retryLoop();
    await Promise.all(Array.from({ length: concurrency }, worker));
    while (this.followUps.length > 0) await this.send(this.followUps.shift() as Step);
    this.retrying = false;
    await retries;
  }

  /**
   * After the load: every unsure request again (same key), `concurrency` at a time, round after round, until each
   * is acknowledged; fails after `timeoutMs` naming how many are left.
   */
  async resendAllUnsure(timeoutMs: number, concurrency = 8): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.acks.unsure.size > 0 || this.followUps.length > 0) {
      if (Date.now() > deadline) throw new Error(`${this.acks.unsure.size} requests still unsure after ${timeoutMs / 1000} s`);
      const round = [...this.acks.unsure.values(), ...this.followUps.splice(0)];
      let next = 0;
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next < round.length) {
          const step = round[next++];
          this.sent.resends += 1;
          await this.send(step);
        }
      }));
      if (this.acks.unsure.size > 0) await sleep(500);
    }
  }

  async close(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined);
  }

  private async retryLoop(): Promise<void> {
    while (this.retrying) {
      await sleep(1_000);
      for (const [key, step] of [...this.acks.unsure].slice(0, 200)) {
        if (!this.retrying) return;
        this.sent.resends += 1;
        await this.send(step);
        if (this.acks.acked.has(key)) this.acks.unsure.delete(key);
      }
    }
  }

  /** Sends one step; files it under acked or unsure; returns 200 for acknowledged, else the status (0: none). */
  async send(step: Step): Promise<number> {
    const status = await this.attempt(step);
    const acknowledged = status >= 200 && status < 300;
    if (acknowledged) this.acks.unsure.delete(step.key);
    this.acks.record(step.key, acknowledged ? 200 : status, step);
    return acknowledged ? 200 : status;
  }

  private async attempt(step: Step): Promise<number> {
    const path = (accountId: string, rest: string) => `/v1/accounts/${accountId}/${rest}`;
    switch (step.kind) {
      case 'usage-http': {
        const now = new Date().toISOString();
        for (const event of step.events) if (!event.occurredAt) event.occurredAt = now;
        this.sent.usageMessages += step.events.length;
        return this.expect(step, await this.request('usage-ingest', 'POST', '/v1/usage-events', { events: step.events }), [202]);
      }
      case 'usage-kafka': {
        const now = new Date().toISOString();
        for (const event of step.events) if (!event.occurredAt) event.occurredAt = now;
        this.sent.usageMessages += step.events.length;
        return this.produce(step.events.map((event) => ({ key: event.accountId, value: JSON.stringify(envelopeOf(event)) })));
      }
      case 'poison':
        return this.produce([{ key: step.key, value: step.value }]);
      case 'grant': {
        if (step.expiresInSeconds !== undefined && !('expiresAt' in step)) Object.assign(step, { expiresAt: new Date(Date.now() + step.expiresInSeconds * 1000).toISOString() });
        const expiresAt = (step as { expiresAt?: string }).expiresAt;
        const body = { idempotencyKey: step.key, amount: step.amount, reason: 'chaos grant', ...(expiresAt ? { expiresAt } : {}) };
        return this.expect(step, this.acceptedIf2xx(step, await this.ledger(step.accountId, 'POST', path(step.accountId, 'grants'), body)), [200, 201]);
      }
      case 'purchase': {
        const body = { paymentReference: step.key, ...(step.packId ? { packId: step.packId } : { amount: step.amount }) };
        return this.expect(step, this.acceptedIf2xx(step, await this.ledger(step.accountId, 'POST', path(step.accountId, 'purchases'), body)), [200, 201]);
      }
      case 'hold': {
        const answer = await this.ledger(step.accountId, 'POST', path(step.accountId, 'authorizations'), { amount: step.amount, hold: { holdId: step.key, ttlSeconds: step.ttlSeconds } });
        const { status } = answer;
        // HOLD_CLOSED: a retry (its first answer lost) of a hold placed then and expired or released since.
        if (status === 200 || status === 201 || (status === 409 && answer.code === 'HOLD_CLOSED')) {
          this.holds.placed += 1;
          if (answer.unlimited) this.holds.unlimited += 1;
          else this.accepted.set(step.key, step);
          this.followUp(step, true);
          return 200;
        }
        if (status === 402) {
          this.holds.refused += 1;
          this.followUp(step, false);
          return 200; // answered: refused, nothing held
        }
        if (this.notOpenedYet(step.accountId, answer)) return status;
        return this.expect(step, answer, []);
      }
      case 'release':
        return this.expect(step, await this.ledger(step.accountId, 'DELETE', path(step.accountId, `holds/${step.holdId}`)), [200, 204, 404]);
      case 'authorize': {
        const answer = await this.ledger(step.accountId, 'POST', path(step.accountId, 'authorizations'), { amount: step.amount });
        return this.notOpenedYet(step.accountId, answer) ? answer.status : this.expect(step, answer, [200, 402]);
      }
      case 'upgrade': {
        const subscribe = step.key.startsWith('subscribe-');
        // Under the step's key, as a billing integration retries: a retry gets the first answer, never a new change.
        const body = { planId: step.planId, ...(subscribe ? { timeZone: 'UTC' } : {}) };
        return this.expect(step, await this.request('subscription-cycle', 'PUT', path(step.accountId, 'subscription'), body, { 'idempotency-key': step.key }), [200]);
      }
    }
  }

  private acceptedIf2xx(step: Extract<Step, { kind: 'grant' | 'purchase' }>, answer: Answer): Answer {
    if (answer.status >= 200 && answer.status < 300) this.accepted.set(step.key, step);
    return answer;
  }

  /** A hold's follow-up, sent once (the first answer decides it): its settling usage, or its release. */
  private followUp(step: Extract<Step, { kind: 'hold' }>, placed: boolean): void {
    if (this.acks.acked.has(step.key)) return;
    if (step.then === 'settle') {
      const { holdId: _hold, ...withoutHold } = step.settleWith;
      const event: UsageBody = placed ? step.settleWith : withoutHold;
      this.followUps.push({ kind: 'usage-http', key: `settle-${step.key}`, events: [event] });
    } else if (step.then === 'release' && placed) {
      this.followUps.push({ kind: 'release', key: `release-${step.key}`, accountId: step.accountId, holdId: step.key });
    }
  }

  /** 2xx is acknowledged; an expected definitive answer too; any other 4xx is a refusal the workload did not expect. */
  private expect(step: Step, { status, code }: Answer, ok: number[]): number {
    if (ok.includes(status) || (status >= 200 && status < 300)) return 200;
    if (status >= 400 && status < 500) {
      this.refusals.push({ step: `${step.kind} ${step.key}`, status, code });
      return 200; // answered for good: sending it again would get the same refusal
    }
    return status;
  }

  /**
   * An account is opened by whatever reaches the ledger first, and usage (over HTTP or Kafka) reaches it
   * asynchronously: an authorization or a hold sent after an account's first usage may find no account yet. Until the
   * ledger has answered a command of that account, its 404 ACCOUNT_NOT_FOUND leaves the step unsure (sent again, as a
   * client would, and the run fails if the account never opens); after that, it is a refusal like any other.
   */
  private notOpenedYet(accountId: string, { status, code }: Answer): boolean {
    return status === 404 && code === 'ACCOUNT_NOT_FOUND' && !this.knownAccounts.has(accountId);
  }

  /** A request to the ledger about one account; an answer that found the account (2xx, 402) makes it known. */
  private async ledger(accountId: string, method: string, path: string, body?: unknown): Promise<Answer> {
    const answer = await this.request('ledger', method, path, body);
    if ((answer.status >= 200 && answer.status < 300) || answer.status === 402) this.knownAccounts.add(accountId);
    return answer;
  }

  private async produce(messages: { key: string; value: string }[]): Promise<number> {
    this.sent.kafkaSends += 1;
    try {
      await this.producer.send(Topics.usageEvents, messages);
      return 200;
    } catch (error) {
      this.kafkaFailures.push({ at: Date.now(), error: (error as Error).message });
      return 0;
    }
  }

  /** One JSON request to a service; records the answer and resolves with it. */
  private async request(service: ServiceName, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const at = Date.now();
    this.sent.httpRequests += 1;
    try {
      const response = await fetch(`${this.system.service(service).base}${path}`, {
        method,
        headers: { authorization: `Bearer ${API_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const parsed = (await response.json().catch(() => ({}))) as { code?: string; details?: { cycleEnd?: string }; unlimited?: boolean };
      const cycleEnd = typeof parsed.details?.cycleEnd === 'string' ? { cycleEnd: parsed.details.cycleEnd } : {};
      const unlimited = parsed.unlimited === true ? { unlimited: true } : {};
      return this.answered({ at, answeredAt: Date.now(), service, method, path, status: response.status, code: parsed.code, retryAfter: response.headers.get('retry-after'), ...cycleEnd, ...unlimited });
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError' ? { timedOut: true } : {};
      return this.answered({ at, answeredAt: Date.now(), service, method, path, status: 0, retryAfter: null, ...timedOut });
    }
  }

  private answered(answer: Answer): Answer {
    this.answers.push(answer);
    return answer;
  }
}

/** The usage-ingest envelope of a usage event, as a service producing to the topic directly writes it. */
export function envelopeOf(event: UsageBody) {
  const { id, accountId, occurredAt, holdId, ...data } = event;
  return { id, type: 'UsageRecorded', version: 1, accountId, occurredAt, data: { ...data, ...(holdId ? { holdId } : {}) } };
}
