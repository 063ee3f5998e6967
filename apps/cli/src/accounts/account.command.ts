import { accountAsOf, accountStreamId, toLedgerEnvelope } from '@tally/ledger-events';
import { asLedgerEnvelope, transactionOf } from '@tally/ledger-read-models';
import { formatCredits } from '@tally/money';
import { quoteIdentifier } from '@tally/shared';
import { Command, Option } from 'commander';
import { instant, positiveInt } from '../cli-arguments.parser';
import type { CliContext } from '../cli-context.provider';
import { json, print, table } from '../output.view';

/** Metadata every stored event has; the rest (e.g. who issued the command) is shown as the event's cause. */
const PLUMBING = new Set(['balanceAfter', 'schemaVersion', 'commandKey']);
/** Detail fields that name what caused an event (usage, hold, grant, payment, cycle...). */
const CAUSE_FIELDS = ['usageId', 'holdId', 'grantId', 'paymentReference', 'bucketId', 'cycleId', 'reason', 'kind', 'feature', 'models'];

/** `tally account inspect <id>`: an account's event stream with causes, its balance at an instant, its read-model rows. */
export function accountCommand(context: CliContext): Command {
  const command = new Command('account').description('one account of the ledger: its events, balance and read-model rows');
  command
    .command('inspect')
    .description('the account\'s event stream with causes (type, time, amount, idempotency key, metadata), its balance (now, or --at an instant, folded from the stream), and its read-model rows')
    .argument('<accountId>', 'the account id')
    .addOption(new Option('--at <instant>', 'fold the stream up to this ISO-8601 instant and show the balance as it was then').argParser(instant))
    .addOption(new Option('--limit <events>', 'show at most the last N events (the balance is folded from all of them)').default(50).argParser(positiveInt))
    .option('--json', 'everything as one JSON document')
    .addHelpText('after', '\nExample:\n  npm run tally -- account inspect acct-1\n  npm run tally -- account inspect acct-1 --at 2026-11-30T12:00:00Z --limit 10')
    .action(async (accountId: string, options: { at?: Date; limit: number; json?: boolean }) => {
      const stream = await context.store.readStream(accountStreamId(accountId));
      if (stream.length === 0) {
        process.stderr.write(`no account ${accountId}: its stream ${accountStreamId(accountId)} is empty\n`);
        process.exitCode = 1;
        return;
      }
      const events = stream.map((stored) => {
        const envelope = toLedgerEnvelope(stored);
        let transaction: ReturnType<typeof transactionOf>;
        try {
          transaction = transactionOf(asLedgerEnvelope(envelope));
        } catch {
          transaction = undefined; // a type the projection does not know: shown without an amount
        }
        const details = (transaction?.details ?? (envelope.data as Record<string, unknown>)) as Record<string, unknown>;
        const cause = Object.fromEntries(CAUSE_FIELDS.filter((field) => details[field] !== undefined).map((field) => [field, details[field]]));
        const metadata = Object.fromEntries(Object.entries(stored.metadata).filter(([key]) => !PLUMBING.has(key)));
        return {
          version: stored.version,
          recordedAt: stored.recordedAt.toISOString(),
          type: stored.type,
          amount: transaction?.amount == null ? null : formatCredits(BigInt(transaction.amount)),
          key: stored.metadata.commandKey ?? null,
          cause,
          ...(Object.keys(metadata).length > 0 ? { metadata } : {}),
          id: stored.id,
        };
      });
      const at = options.at ?? new Date();
      const asOf = accountAsOf(stream, at);
      const readModel = await readModelRows(context, accountId);
      const shown = events.slice(-options.limit);
      if (options.json) {
        print(json({ accountId, events: shown, eventCount: events.length, balanceAt: { at: at.toISOString(), version: asOf.version, ...asOf.balance }, readModel }));
        return;
      }
      print(`account ${accountId}: ${events.length} events${shown.length < events.length ? ` (the last ${shown.length} shown)` : ''}`);
      print(table(shown.map((e) => ({ v: e.version, recordedAt: e.recordedAt, type: e.type, amount: e.amount, key: e.key, cause: e.cause, metadata: e.metadata }))));
      print(`\nbalance at ${at.toISOString()} (${asOf.version === 0 ? 'before the first event: nothing to fold' : `folded from versions 1..${asOf.version}`}):`);
      print(table([{ ...asOf.balance }]));
      print(`\nread model (${context.config.DATABASE_SCHEMA}.balances, version ${readModel.balance?.stream_version ?? 'none'}; amounts in micro-credits):`);
      print(readModel.balance ? table([readModel.balance]) : '(no balances row: the projection has not seen this account)');
      print(`transactions: ${readModel.transactions} rows, usage records: ${readModel.usageRecords} rows; the last ${readModel.lastTransactions.length} transactions:`);
      print(table(readModel.lastTransactions));
    });
  return command;
}

async function readModelRows(context: CliContext, accountId: string) {
  const s = quoteIdentifier(context.config.DATABASE_SCHEMA);
  const { pool } = context;
  const balance = (await pool.query<Record<string, unknown>>(`SELECT * FROM ${s}.balances WHERE account_id = $1`, [accountId])).rows[0];
  const counts = (
    await pool.query<{ transactions: string; usage: string }>(
      `SELECT (SELECT count(*) FROM ${s}.ledger_transactions WHERE account_id = $1)::text AS transactions,
              (SELECT count(*) FROM ${s}.usage_records WHERE account_id = $1)::text AS usage`,
      [accountId],
    )
  ).rows[0];
  const lastTransactions = (
    await pool.query<Record<string, unknown>>(
      `SELECT stream_version AS v, type, amount, balance_after, occurred_at FROM ${s}.ledger_transactions WHERE account_id = $1 ORDER BY stream_version DESC LIMIT 5`,
      [accountId],
    )
  ).rows;
  return { balance, transactions: Number(counts.transactions), usageRecords: Number(counts.usage), lastTransactions };
}
