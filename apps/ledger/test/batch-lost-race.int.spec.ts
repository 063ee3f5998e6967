import pino from 'pino';
import type { ParsedMessage } from '@tally/contracts';
import type { KafkaBatch } from '@tally/kafka';
import type { AccountCommand } from '@tally/ledger-domain';
import { systemClock } from '@tally/shared';
import { accountCacheMisses } from '../src/accounts/account.metrics';
import { AccountRepository } from '../src/accounts/account.repository';
import { ApplyCommandBatchHandler } from '../src/command-consumer/apply-command-batch.handler';
import { LedgerConfig } from '../src/config/ledger.config';
import { eventStoreOnFreshSchema } from './event-store.fixtures';

const grant = (accountId: string, key: string): AccountCommand => ({ type: 'GrantCredits', accountId, grantId: key, kind: 'promotional', amount: 1_000_000n, source: `promo:${key}` });

/**
 * Holds, grants and releases come through the HTTP API while the consumer applies usage to the same accounts: an API
 * write that commits between the consumer's read of a batch's stream versions and its append makes the batch's append
 * fail, and the whole batch is retried. The retry must start from the cached states, which are still true prefixes of
 * the streams (one account is one event behind), not read every account of the batch again: that made each retry
 * slower, and so likelier to lose the next race. Real PostgreSQL; the consumer's handler in a transaction of its own.
 */
describe('a consumer batch that lost a race with an HTTP command', () => {
  const ACCOUNTS = 200;
  const postgres = eventStoreOnFreshSchema('batch_lost_race', 6);
  const config = Object.assign(new LedgerConfig(), { ACCOUNT_CACHE_SIZE: 10_000, ACCOUNT_CACHE_REMEMBERED: 250_000, WORKERS: 'commands' });
  const misses = async () => (await accountCacheMisses.get()).values[0]?.value ?? 0;

  it('is retried from the cached states: only the account the command wrote to is read again', async () => {
    const { store, pool } = postgres;
    const accountIds = Array.from({ length: ACCOUNTS }, (_, i) => `race-${i}`);
    const consumer = new AccountRepository(store, config, systemClock);
    for (const accountId of accountIds) await consumer.execute(grant(accountId, 'opening'), 'opening');
    const http = new AccountRepository(store, config, systemClock);

    // The HTTP command commits once the consumer has read its versions, just before the consumer appends (once).
    const appendMany = store.appendMany.bind(store);
    let raced = false;
    store.appendMany = async (...args: Parameters<typeof store.appendMany>) => {
      if (!raced && args[1] !== undefined) {
        raced = true;
        await http.execute(grant('race-7', 'api-grant'), 'api-grant');
      }
      return appendMany(...args);
    };
    const handler = new ApplyCommandBatchHandler(consumer, config, pino({ level: 'silent' }), systemClock);
    const toCommand = (message: ParsedMessage) => ({ command: grant(message.envelope.accountId, message.envelope.id), commandKey: message.envelope.id });
    const messages = accountIds.map((accountId, offset) => ({ offset: String(offset), timestamp: '0', headers: {}, value: { envelope: { id: `batch-${accountId}`, accountId } } }));

    /** The batch in a transaction of its own, as the transport runs it: committed, or rolled back if it throws. */
    const attempt = async () => {
      const tx = await pool.connect();
      const afterCommit: (() => void)[] = [];
      try {
        await tx.query('BEGIN');
        const batch = { topic: 'usage', partition: 0, messages, tx, deadLetter: () => undefined, afterCommit: (run: () => void) => afterCommit.push(run) };
        await handler.apply(batch as unknown as KafkaBatch<ParsedMessage>, toCommand);
        await tx.query('COMMIT');
        for (const run of afterCommit) run();
      } catch (error) {
        await tx.query('ROLLBACK');
        throw error;
      } finally {
        tx.release();
      }
    };

    try {
      await expect(attempt()).rejects.toMatchObject({ code: 'WRONG_EXPECTED_VERSION' });
      const before = await misses();
      await attempt();
      expect((await misses()) - before).toBe(1);
    } finally {
      store.appendMany = appendMany;
    }
    const { rows } = await pool.query<{ events: number }>(`SELECT count(*)::int AS events FROM "${postgres.schema}".events WHERE type = 'CreditsGranted'`);
    expect(rows[0].events).toBe(2 * ACCOUNTS + 1);
  }, 60_000);
});
