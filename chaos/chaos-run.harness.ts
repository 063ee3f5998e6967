import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChaosSettings } from './chaos.config';
import { CONSUMER_GROUPS, ChaosSystem, ROOT } from './chaos.harness';
import type { ChaosReport } from './chaos-report.view';
import { faultSchedule, inject, scheduleDurationMs, type InjectedFault } from './fault.schedule';
import { checkInvariants, consumerLag, type InvariantResult } from './invariants.harness';
import { generateWorkload } from './workload.fixtures';
import { WorkloadClient, type Answer } from './workload.client';

/** Most usage events per second the load asks for, whatever the schedule's length (2 cores, four services). */
const MAX_RATE = 1_500;

/**
 * One fault run: starts the system, sends the seeded workload while the seeded faults are injected one after
 * another, lets the load drain (every unsure request sent again until acknowledged, every consumer caught up,
 * every alert sent), checks the invariants and always tears everything down. Rejects when the deadline passes.
 */
export async function runChaos(settings: ChaosSettings, log: (line: string) => void, signal?: AbortSignal): Promise<ChaosReport> {
  const startedAt = Date.now();
  const logDir = join(ROOT, '.cache/chaos', `${settings.seed}-${startedAt}`);
  const workload = generateWorkload({ seed: settings.seed, events: settings.events, accounts: settings.accounts, httpBatch: settings.short ? 20 : 100, kafkaBatch: settings.short ? 50 : 250 });
  const schedule = faultSchedule(settings.seed, settings.faults, { short: settings.short, pauseMs: settings.pauseMs });
  const at = () => `+${((Date.now() - startedAt) / 1000).toFixed(1)} s`;
  log(`seed ${settings.seed}: ${workload.usageEvents} usage events over ${workload.accounts.length} accounts, ${workload.steps.length} steps, ${schedule.length} faults; logs in ${logDir}`);

  let system: ChaosSystem | undefined;
  let driver: WorkloadClient | undefined;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`deadline: the run did not finish within ${settings.deadlineMs / 1000} s (CHAOS_DEADLINE_SECONDS)`)), settings.deadlineMs);
    // Interrupted (SIGINT, SIGTERM: a CI job's timeout): ends like the deadline, everything the run started torn down.
    signal?.addEventListener('abort', () => reject(new Error('interrupted')), { once: true });
  });
  // Kept so that a run interrupted (or past its deadline) while the system starts still tears down what it started.
  let starting: Promise<ChaosSystem> | undefined;
  const run = async (): Promise<ChaosReport> => {
    starting = ChaosSystem.start(logDir);
    system = await starting;
    log(`${at()} PostgreSQL ${system.postgres.url}, broker ${system.kafka.broker}; starting the services`);
    await system.startServices();
    const running = system;
    driver = new WorkloadClient(running, workload);
    const client = driver;
    await client.setUp();
    const seconds = Math.max(10, scheduleDurationMs(schedule) / 1000);
    const rate = Math.min(MAX_RATE, Math.ceil(workload.usageEvents / seconds));
    log(`${at()} load: about ${rate} usage events/s for ${seconds.toFixed(0)} s, faults meanwhile`);
    const loadFrom = Date.now();
    // Back-pressure: the load waits while the ledger's usage consumer is more than this far behind.
    const maxBacklog = settings.short ? 5_000 : 30_000;
    let behind = 0n;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const lag = await consumerLag(running).catch(() => undefined);
        if (lag) behind = lag.get('ledger usage') ?? 0n;
        await sleep(1_000);
      }
    })();
    const load = client.run(rate, settings.short ? 4 : 8, () => behind > BigInt(maxBacklog)).finally(() => {
      polling = false;
    });
    const faults: InjectedFault[] = [];
    for (const { gapMs, fault } of schedule) {
      await sleep(gapMs);
      const done = await inject(running, fault, settings.graceMs);
      faults.push(done);
      log(`${at()} fault ${faults.length}/${schedule.length}: ${done.label} (${((done.endedAt - done.startedAt) / 1000).toFixed(1)} s): ${done.detail}`);
    }
    await load;
    await poller;
    // The lag's bound counts from here (or the last fault's end, if later), not from the end of the resends below:
    // a system slow to answer them must not earn a later start for its consumers.
    const loadSent = Date.now();
    const lastFaultEnd = Math.max(...faults.map((f) => f.endedAt));
    log(`${at()} load sent; sending unsure requests again until acknowledged (${client.acks.unsure.size} now)`);
    // The lag is watched from here, while the resends go on: the moment each group reached 0 for good is what counts.
    const resending = client.resendAllUnsure(settings.short ? 180_000 : 600_000);
    const lagWatch = waitForLagZero(running, lastFaultEnd, loadSent, settings.lagBoundMs + 60_000, resending.then(() => undefined, () => undefined));
    await resending;
    const loadUntil = Date.now();
    const lagRecovery = await lagWatch;
    log(`${at()} consumers caught up; waiting for the read model and the alerts`);
    // Bounded: a read model that never catches up (an event the relay lost) is for the checker to report.
    await waitForReadModel(running, settings.short ? 45_000 : 120_000);
    await waitForAlerts(running, settings.short ? 45_000 : 120_000);
    log(`${at()} checking the invariants`);
    const invariants: InvariantResult[] = await checkInvariants({ system: running, workload, driver: client, faults, lagRecovery, lagBoundMs: settings.lagBoundMs });
    return {
      settings,
      startedAt,
      load: { from: loadFrom, until: loadUntil },
      sent: {
        distinctUsage: client.usageIds().acked.size, ...client.sent, steps: workload.steps.length, poison: workload.poisonKeys.length,
        holdsPlaced: client.holds.placed, holdsRefused: client.holds.refused,
      },
      faults,
      lag: CONSUMER_GROUPS.map(({ name }) => ({ name, ...lagRecovery.get(name) })),
      fiveHundreds: windowsOf(client.answers.filter((a) => a.status >= 500)),
      noAnswer: client.answers.filter((a) => a.status === 0).length,
      invariants,
      passed: invariants.every((r) => r.failures === 0),
      durationMs: Date.now() - startedAt,
      logDir,
    };
  };
  try {
    return await Promise.race([run(), deadline]);
  } finally {
    clearTimeout(timer);
    await driver?.close();
    system ??= await starting?.catch(() => undefined);
    await system?.destroy();
  }
}

/**
 * Polls every consumer group's lag (topic end vs the offset stored with the effects) until `sent` has resolved (the
 * resends, which add messages) and all are 0 at once, or `timeoutMs` after that; per group, when it reached 0 for good
 * (any lag since resets it), from the last fault's end and from the moment the load was sent.
 */
async function waitForLagZero(system: ChaosSystem, lastFaultEnd: number, loadSent: number, timeoutMs: number, sent: Promise<void>) {
  const zeroSince = new Map<string, number | undefined>();
  let deadline: number | undefined;
  void sent.then(() => (deadline = Date.now() + timeoutMs));
  for (;;) {
    const lag = await consumerLag(system).catch(() => undefined);
    const now = Date.now();
    if (lag) for (const [name, behind] of lag) zeroSince.set(name, behind === 0n ? (zeroSince.get(name) ?? now) : undefined);
    const allZero = lag !== undefined && [...lag.values()].every((behind) => behind === 0n);
    if (deadline !== undefined && (allZero || now > deadline)) break;
    await sleep(250);
  }
  return new Map(CONSUMER_GROUPS.map(({ name }) => {
    const since = zeroSince.get(name);
    return [name, since === undefined ? undefined : { afterLastFaultMs: Math.max(0, since - lastFaultEnd), afterLoadMs: Math.max(0, since - loadSent) }];
  }));
}

async function waitForReadModel(system: ChaosSystem, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await system.pool.query<{ n: number }>(
      `select count(*)::int as n from ledger.streams s left join ledger.balances b on b.account_id = substr(s.stream_id, 9) where b.stream_version is distinct from s.version`,
    ).catch(() => ({ rows: [{ n: -1 }] }));
    if (rows[0].n === 0 || Date.now() > deadline) return;
    await sleep(250);
  }
}

/** Until no delivery is pending and every delivered one was received (the checker says what is missing after). */
async function waitForAlerts(system: ChaosSystem, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await system.pool.query<{ pending: number; delivered: number }>(
      `select count(*) filter (where state = 'pending')::int as pending, count(*) filter (where state = 'delivered')::int as delivered from notification.deliveries`,
    ).catch(() => ({ rows: [{ pending: -1, delivered: 0 }] }));
    const received = new Set([
      ...system.smtp.messages.map((m) => m.messageId ?? ''),
      ...system.receiver.received.map((r) => String(r.headers['webhook-id'] ?? '')),
    ]).size;
    if ((rows[0].pending === 0 && received >= rows[0].delivered) || Date.now() > deadline) return;
    await sleep(250);
  }
}

/** 5xx answers grouped into windows (answers less than 3 s apart). */
function windowsOf(answers: Answer[]): ChaosReport['fiveHundreds'] {
  const sorted = [...answers].sort((a, b) => a.at - b.at);
  const windows: { from: number; until: number; items: Answer[] }[] = [];
  for (const answer of sorted) {
    const last = windows[windows.length - 1];
    if (last && answer.at - last.until < 3_000) {
      last.until = answer.at;
      last.items.push(answer);
    } else windows.push({ from: answer.at, until: answer.at, items: [answer] });
  }
  const summary = (values: string[]) => [...new Set(values)].join(', ');
  return {
    total: answers.length,
    windows: windows.map((w) => ({ from: w.from, until: w.until, count: w.items.length, services: summary(w.items.map((a) => a.service)), codes: summary(w.items.map((a) => `${a.status} ${a.code ?? ''}`.trim())) })),
  };
}
