import { rebuildReadModels, verifyReadModels, eventStoreSource, type RebuildProgress } from '@tally/ledger-read-models';
import { quoteIdentifier } from '@tally/shared';
import { SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import { nonNegativeInt, positiveInt } from '../cli-arguments.parser';
import type { CliContext } from '../cli-context.provider';
import { json, print, table } from '../output.view';

const batchSize = () => new Option('--batch-size <events>', 'events per read from the event store and per transaction into the shadow tables').default(2000).argParser(positiveInt);

/** `tally read-models rebuild|verify`: the ledger's read models from the event store. */
export function readModelsCommand(context: CliContext): Command {
  const command = new Command('read-models').description("the ledger's read models (balances, transactions, usage), rebuilt and verified from the event store");

  command
    .command('rebuild')
    .description(
      'rebuild the read models from the event store (not Kafka) into shadow tables, then swap them in: reads keep working meanwhile, ' +
        'and events the live projection applies during the rebuild are folded in under a lock at the swap (nothing lost, nothing twice)',
    )
    .addOption(batchSize())
    .option('--keep-retired', 'keep the replaced tables in <schema>_retired_<UTC yyyymmddhhmmssmmm>, which no rebuild drops (drop it by hand); dropped by default', false)
    .option(
      '--allow-behind-live',
      'swap in a fold that lacks accounts the live tables have, or holds them at an older version (refused by default: it means another, emptied or older event store)',
      false,
    )
    .option('--no-progress', 'no progress bar (one line at the end)')
    .addHelpText('after', '\nExample:\n  npm run tally -- read-models rebuild\n  DATABASE_SCHEMA=ledger npm run tally -- read-models rebuild --batch-size 5000 --keep-retired')
    .action(async (options: { batchSize: number; keepRetired: boolean; allowBehindLive: boolean; progress: boolean }) => {
      const { pool, config } = context;
      const progress = await progressBar(context, options.progress);
      const started = Date.now();
      const result = await rebuildReadModels({
        pool,
        schema: config.DATABASE_SCHEMA,
        source: eventStoreSource(context.store),
        batchSize: options.batchSize,
        keepRetired: options.keepRetired,
        allowBehindLive: options.allowBehindLive,
        onProgress: progress.update,
      }).finally(() => progress.stop());
      const seconds = (Date.now() - started) / 1000;
      print(
        `rebuilt ${config.DATABASE_SCHEMA} read models from ${result.events} events in ${seconds.toFixed(1)} s (${Math.round(result.events / Math.max(seconds, 0.001))} events/s); ` +
          `${result.caughtUpAtSwap} caught up under the swap lock (held ${result.lockedMs} ms), ${result.movedForward} balances moved forward, ${result.skipped} events skipped (not projectable)` +
          (result.retiredKept ? `; the retired tables were kept: ${result.retiredKept}` : '') +
          (result.retiredSchema ? `; the replaced tables were kept in ${result.retiredSchema}` : ''),
      );
    });

  command
    .command('verify')
    .description('compare the live read models with a fresh fold of the event store, row by row; exit code 1 on a difference, 2 if the live projection did not catch up within --settle-seconds')
    .addOption(batchSize())
    .addOption(new Option('--settle-seconds <seconds>', 'how long to let the live projection catch up with the store before comparing for the last time').default(30).argParser(nonNegativeInt))
    .option('--json', 'the report as JSON')
    .addHelpText('after', '\nExample:\n  npm run tally -- read-models verify\n  npm run tally -- read-models verify --json | jq .differences')
    .action(async (options: { batchSize: number; settleSeconds: number; json?: boolean }) => {
      const { pool, config } = context;
      const report = await verifyReadModels({
        pool,
        schema: config.DATABASE_SCHEMA,
        source: eventStoreSource(context.store),
        batchSize: options.batchSize,
        settleMs: options.settleSeconds * 1000,
      });
      if (options.json) print(json(report));
      else {
        print(table(Object.entries(report.rows).map(([name, counts]) => ({ table: name, live: counts.live, 'event store': counts.fold }))));
        if (report.differences.length > 0) {
          print(table(report.differences.map((d) => ({ table: d.table, account: d.accountId, kind: d.kind, live: d.live, 'event store': d.fold }))));
        }
        if (report.unsettled.length > 0) {
          // Which accounts did not settle, by their balance's stream version on each side (none: no balance row there).
          print(table(report.unsettled.map((u) => ({ 'not settled': u.accountId, 'live version': u.live ?? 'none', 'event store version': u.fold ?? 'none' }))));
        }
        print(
          report.identical
            ? `identical: the live read models are the fold of ${report.events} events`
            : `${report.differenceCount} differences; ${report.pending} accounts pending, ${report.ahead} ahead of the fold (not settled)`,
        );
      }
      process.exitCode = report.differenceCount > 0 ? 1 : report.identical ? 0 : 2;
    });
  return command;
}

/** A progress bar on stderr with the fold's rate; the total is the event count when the store is PostgreSQL. */
async function progressBar(context: CliContext, enabled: boolean): Promise<{ update: (progress: RebuildProgress) => void; stop: () => void }> {
  if (!enabled) return { update: () => undefined, stop: () => undefined };
  const total =
    context.config.EVENT_STORE === 'postgres'
      ? Number((await context.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${quoteIdentifier(context.config.DATABASE_SCHEMA)}.events`)).rows[0].n)
      : 0;
  const bar = new SingleBar({
    format: '{phase} [{bar}] {percentage}% | {value}/{total} events | {rate} events/s | ETA {eta}s',
    hideCursor: true,
    etaBuffer: 20,
  });
  const started = Date.now();
  bar.start(total, 0, { phase: 'fold', rate: 0 });
  return {
    update: (progress) => {
      const done = progress.events + progress.skipped;
      bar.setTotal(Math.max(total, done));
      bar.update(done, { phase: progress.phase, rate: Math.round(done / Math.max((Date.now() - started) / 1000, 0.001)) });
    },
    stop: () => bar.stop(),
  };
}
