import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { encodePgCheckpoint } from '@tally/event-store';
import { API_KEY, SERVICES, type ChaosSystem, type ServiceName } from './chaos.harness';
import { SeededRandom } from './workload.fixtures';

export type Fault =
  /** kill -9 of a running service, then started again (ready). */
  | { kind: 'kill'; service: ServiceName }
  /** A service killed -9 again while it starts, before it reports ready; then started for good. */
  | { kind: 'kill-during-start-up'; service: ServiceName; afterMs: number }
  /** kill -9 of the broker; down for `downMs`, then started on the same data. */
  | { kind: 'broker-kill'; downMs: number }
  /** pg_ctl restart -m fast: every session terminated. */
  | { kind: 'postgres-restart' }
  /** PostgreSQL crashed (stop -m immediate: no checkpoint, sessions cut mid-transaction), then started: crash recovery. */
  | { kind: 'postgres-crash' }
  /** PostgreSQL stopped for `downMs` (connections refused), then started. */
  | { kind: 'postgres-stop'; downMs: number }
  /** SIGSTOP past the consumers' Kafka session timeout, then SIGCONT. */
  | { kind: 'pause'; service: ServiceName; ms: number }
  /**
   * A transaction left open for `ms` in another database of the run's PostgreSQL (a report elsewhere on a shared
   * cluster), under load: the ledger's relay must keep publishing meanwhile (invariant 9).
   */
  | { kind: 'foreign-transaction'; ms: number };

export interface ScheduledFault {
  /** Quiet time before it, under load. */
  gapMs: number;
  fault: Fault;
}

/** A foreign transaction's outcome: the first event committed after it began (checkpoint form), how far the relay got. */
export interface ForeignTransactionOutcome {
  event: string | undefined;
  relayed: string;
  published: boolean | undefined;
}

/** What happened when a fault ran; `window` is when answers other than 2xx are documented behaviour. */
export interface InjectedFault {
  fault: Fault;
  label: string;
  startedAt: number;
  endedAt: number;
  detail: string;
  /** The part of the system that was unavailable, and from when until when (end = back + the grace period). */
  window: { scope: 'all' | ServiceName; from: number; until: number };
  /** A foreign transaction's: whether the relay published an event committed after it began, while it was open. */
  foreign?: ForeignTransactionOutcome;
}

export const describeFault = (fault: Fault): string => {
  switch (fault.kind) {
    case 'kill':
      return `kill -9 ${fault.service}`;
    case 'kill-during-start-up':
      return `kill -9 ${fault.service} during start-up`;
    case 'broker-kill':
      return `kill -9 broker, down ${(fault.downMs / 1000).toFixed(1)} s`;
    case 'postgres-restart':
      return 'PostgreSQL fast restart';
    case 'postgres-crash':
      return 'PostgreSQL crash (immediate stop), crash recovery';
    case 'postgres-stop':
      return `PostgreSQL stopped ${(fault.downMs / 1000).toFixed(1)} s`;
    case 'pause':
      return `SIGSTOP ${fault.service} ${(fault.ms / 1000).toFixed(0)} s, SIGCONT`;
    case 'foreign-transaction':
      return `a transaction open in another database (up to ${(fault.ms / 1000).toFixed(0)} s)`;
  }
};

/**
 * The faults of a run, from its seed: the short (CI) size always has a kill -9 of the ledger, a broker kill -9 and a
 * transaction left open in another database; the full size kills each service twice (once while it starts), the
 * broker, restarts and stops PostgreSQL, pauses the ledger past its session timeout and holds a foreign transaction;
 * more faults than that draw more of the kill, restart, stop and pause kinds.
 */
export function faultSchedule(seed: number, count: number, options: { short: boolean; pauseMs: number }): ScheduledFault[] {
  const random = new SeededRandom(seed ^ 0x5eed);
  const startUpKill = (service: ServiceName): Fault => ({ kind: 'kill-during-start-up', service, afterMs: random.int(300, 2_500) });
  const kinds: (() => Fault)[] = [
    () => ({ kind: 'kill', service: random.pick(SERVICES) }),
    () => startUpKill(random.pick(SERVICES)),
    () => ({ kind: 'broker-kill', downMs: random.int(1_000, 6_000) }),
    () => ({ kind: 'postgres-restart' }),
    () => ({ kind: 'postgres-stop', downMs: random.int(1_000, 5_000) }),
    () => ({ kind: 'pause', service: random.pick(['ledger', 'notification'] as const), ms: options.pauseMs }),
    () => ({ kind: 'postgres-crash' }),
  ];
  const required: Fault[] = options.short
    ? [{ kind: 'kill', service: 'ledger' }, { kind: 'broker-kill', downMs: random.int(1_000, 4_000) }, { kind: 'foreign-transaction', ms: FOREIGN_TRANSACTION_MS }]
    : [
        { kind: 'foreign-transaction', ms: FOREIGN_TRANSACTION_MS },
        ...SERVICES.map((service): Fault => ({ kind: 'kill', service })),
        ...SERVICES.map(startUpKill),
        { kind: 'broker-kill', downMs: random.int(1_000, 6_000) },
        { kind: 'postgres-restart' },
        { kind: 'postgres-crash' },
        { kind: 'postgres-stop', downMs: random.int(1_000, 5_000) },
        { kind: 'pause', service: 'ledger', ms: options.pauseMs },
      ];
  const faults = random.shuffle(required.slice(0, Math.max(count, options.short ? 3 : 2)));
  // The short size keeps its required three and adds kinds it does not have yet; a larger count draws from every kind.
  const others = random.shuffle(kinds.slice(1).filter((_, i) => i !== 1));
  while (faults.length < count) faults.splice(random.int(0, faults.length), 0, (others.shift() ?? random.pick(kinds))());
  return faults.map((fault) => ({ gapMs: random.int(3_000, 8_000), fault }));
}

/** Roughly how long a schedule takes (for pacing the load over it). */
export function scheduleDurationMs(schedule: ScheduledFault[]): number {
  const cost = (fault: Fault) => {
    switch (fault.kind) {
      case 'kill':
        return 12_000;
      case 'kill-during-start-up':
        return 14_000;
      case 'broker-kill':
        return fault.downMs + 6_000;
      case 'postgres-restart':
        return 3_000;
      case 'postgres-crash':
        return 5_000;
      case 'postgres-stop':
        return fault.downMs + 3_000;
      case 'pause':
        return fault.ms + 3_000;
      case 'foreign-transaction':
        return 2_000; // usually: the relay caught up, an event committed and published within a second or two
    }
  };
  return schedule.reduce((sum, { gapMs, fault }) => sum + gapMs + cost(fault), 0);
}

/** Runs one fault against the system and says what happened. */
export async function inject(system: ChaosSystem, fault: Fault, graceMs: number): Promise<InjectedFault> {
  const startedAt = Date.now();
  let detail = '';
  let scope: 'all' | ServiceName = 'all';
  let foreign: ForeignTransactionOutcome | undefined;
  switch (fault.kind) {
    case 'kill': {
      scope = fault.service;
      const service = system.service(fault.service);
      await service.signal('SIGKILL');
      const readyIn = await service.start();
      detail = `ready again in ${(readyIn / 1000).toFixed(1)} s`;
      break;
    }
    case 'kill-during-start-up': {
      scope = fault.service;
      const service = system.service(fault.service);
      await service.signal('SIGKILL');
      service.spawn();
      await sleep(fault.afterMs);
      const wasReady = await service.ready();
      await service.signal('SIGKILL');
      const readyIn = await service.start();
      detail = `killed ${(fault.afterMs / 1000).toFixed(1)} s into start-up (${wasReady ? 'already ready' : 'not ready yet'}), ready again in ${(readyIn / 1000).toFixed(1)} s`;
      break;
    }
    case 'broker-kill': {
      await system.kafka.stop('SIGKILL');
      await sleep(fault.downMs);
      const t = Date.now();
      await system.kafka.start();
      detail = `broker serving again ${((Date.now() - t) / 1000).toFixed(1)} s after its start`;
      break;
    }
    case 'postgres-restart':
      await system.postgres.restart();
      detail = `restarted in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`;
      break;
    case 'postgres-crash':
      await system.postgres.crash();
      detail = `recovered and serving ${((Date.now() - startedAt) / 1000).toFixed(1)} s after the crash`;
      break;
    case 'postgres-stop':
      await system.postgres.stop();
      await sleep(fault.downMs);
      await system.postgres.start();
      detail = `back ${((Date.now() - startedAt) / 1000).toFixed(1)} s after the stop`;
      break;
    case 'pause': {
      scope = fault.service;
      const service = system.service(fault.service);
      await service.signal('SIGSTOP');
      await sleep(fault.ms);
      await service.signal('SIGCONT');
      detail = `${service.running() ? 'running' : 'exited'} after SIGCONT`;
      break;
    }
    case 'foreign-transaction':
      foreign = await holdForeignTransaction(system, fault.ms);
      detail = foreign.published === undefined
        ? 'no event committed while it was open'
        : foreign.published
          ? `an event committed after it was published while it was open, ${((Date.now() - startedAt) / 1000).toFixed(1)} s in`
          : `the relay stayed at ${foreign.relayed}, before ${foreign.event}, committed after it`;
      break;
  }
  const endedAt = Date.now();
  // A foreign transaction makes nothing unavailable: no answer other than 2xx is documented during it.
  const until = foreign ? startedAt : endedAt + graceMs;
  return { fault, label: describeFault(fault), startedAt, endedAt, detail, window: { scope, from: startedAt, until }, ...(foreign && { foreign }) };
}

/** How long the foreign transaction stays open at most: many times the relay's poll, short of any idle timeout. */
const FOREIGN_TRANSACTION_MS = 20_000;
/** How long the relay is given first to publish what the previous fault left (it must be flowing before the test). */
const RELAY_CATCH_UP_MS = 30_000;
const FOREIGN_DATABASE = 'chaos_elsewhere';

/**
 * Waits for the relay to publish what is already committed (the previous fault may have left it catching up), then
 * opens a transaction that holds a transaction id in another database of the run's PostgreSQL, waits for the ledger
 * to commit an event after it (the load keeps appending), then for the relay to publish that event (its checkpoint at
 * or past the event's), all while the transaction stays open. `published` is undefined when no event came in the time.
 */
async function holdForeignTransaction(system: ChaosSystem, ms: number): Promise<ForeignTransactionOutcome> {
  await system.pool.query(`CREATE DATABASE ${FOREIGN_DATABASE}`).catch((error: { code?: string }) => {
    if (error.code !== '42P04') throw error; // already there (an earlier fault of the run)
  });
  // An event's place as the relay's checkpoint writes it (the store's own encoding): the two compare as strings.
  const checkpointOf = (row: { transactionId: string; globalPosition: string } | undefined) =>
    row && encodePgCheckpoint({ transactionId: BigInt(row.transactionId), globalPosition: BigInt(row.globalPosition) });
  const position = `transaction_id::text AS "transactionId", global_position::text AS "globalPosition"`;
  const relayed = async () =>
    (await system.pool.query<{ checkpoint: string }>(`select checkpoint from ledger.relay_checkpoints where name = 'ledger-events'`)).rows[0]?.checkpoint ?? '';
  const publishedBy = async (event: string, deadline: number) => {
    let checkpoint = await relayed();
    while (checkpoint < event && Date.now() < deadline) {
      await sleep(100);
      checkpoint = await relayed();
    }
    return checkpoint;
  };
  const latest = checkpointOf((await system.pool.query(`select ${position} from ledger.events order by transaction_id desc, global_position desc limit 1`)).rows[0]);
  if (latest) await publishedBy(latest, Date.now() + RELAY_CATCH_UP_MS);

  const url = new URL(system.postgres.url);
  url.pathname = `/${FOREIGN_DATABASE}`;
  const client = new Client({ connectionString: url.toString(), application_name: 'chaos-foreign-transaction' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('BEGIN');
    const { rows: [{ xid }] } = await client.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid');
    const deadline = Date.now() + ms;
    const firstAfter = async () =>
      checkpointOf((await system.pool.query(`select ${position} from ledger.events where transaction_id > $1::xid8 order by transaction_id, global_position limit 1`, [xid])).rows[0]);
    // The load may have ended or paused (its lag cap): the harness commits an event of its own, so the check always
    // has one to look for (a grant to an account of its own, outside the workload's, which the other checks ignore).
    await fetch(`${system.service('ledger').base}/v1/accounts/chaos-foreign/grants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ idempotencyKey: `foreign-${xid}`, amount: '1', reason: 'chaos: an event committed while a foreign transaction is open' }),
      signal: AbortSignal.timeout(10_000),
    }).catch(() => undefined);
    let event: string | undefined;
    while (!(event = await firstAfter()) && Date.now() < deadline) await sleep(100);
    if (!event) return { event: undefined, relayed: await relayed(), published: undefined };
    // Half the hold at least for the publish, however late the event came.
    const checkpoint = await publishedBy(event, Math.max(deadline, Date.now() + ms / 2));
    return { event, relayed: checkpoint, published: checkpoint >= event };
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
