/**
 * `npm run chaos` (bash chaos/run.sh): the fault run of the whole system. Knobs (validated, chaos.config.ts):
 * CHAOS_SEED, CHAOS_EVENTS [200000], CHAOS_ACCOUNTS [400], CHAOS_FAULTS [14], CHAOS_SHORT=1 (the CI size),
 * CHAOS_DEADLINE_SECONDS, CHAOS_LAG_BOUND_SECONDS, CHAOS_KEEP_LOGS=1. Exits 0 when every invariant holds, 1 when
 * one fails, 2 when the run could not finish (deadline, interrupted, a service that never came up); always prints the seed and
 * the command that replays it.
 */
import 'reflect-metadata';
import { rmSync } from 'node:fs';
import { chaosSettings, replayCommand } from './chaos.config';
import { formatReport } from './chaos-report.view';
import { runChaos } from './chaos-run.harness';

async function main(): Promise<number> {
  const settings = chaosSettings();
  const log = (line: string) => console.log(`[chaos] ${line}`);
  log(`seed ${settings.seed}; replay: ${replayCommand(settings)}`);
  const interrupted = new AbortController();
  for (const name of ['SIGINT', 'SIGTERM'] as const) process.once(name, () => interrupted.abort());
  try {
    const report = await runChaos(settings, log, interrupted.signal);
    console.log(`\n${formatReport(report)}`);
    if (report.passed && !settings.keepLogs) rmSync(report.logDir, { recursive: true, force: true });
    return report.passed ? 0 : 1;
  } catch (error) {
    console.error(`[chaos] the run did not finish: ${(error as Error).stack ?? String(error)}`);
    log(`seed ${settings.seed}; replay: ${replayCommand(settings)}`);
    return 2;
  }
}

main().then((code) => process.exit(code), (error: unknown) => {
  console.error(error);
  process.exit(2);
});
