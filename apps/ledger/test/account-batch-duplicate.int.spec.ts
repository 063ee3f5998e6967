import type { EventStore } from '@tally/event-store';
import { usageCommand } from '@tally/ledger-domain/testing';
import { ManualClock } from '@tally/shared';
import { AccountRepository } from '../src/accounts/account.repository';
import type { LedgerConfig } from '../src/config/ledger.config';
import { eventStoreOnFreshSchema } from './event-store.fixtures';

const config = { ACCOUNT_CACHE_SIZE: 1_000, ACCOUNT_CACHE_REMEMBERED: 250_000 } as LedgerConfig;

/** The real store, whose appendMany waits for `open` once it has said that it was reached. */
function gatedAppends(store: EventStore): { store: EventStore; reached: Promise<void>; open: () => void } {
  let reach!: () => void;
  let open!: () => void;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  const opened = new Promise<void>((resolve) => (open = resolve));
  const gated = new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'appendMany') {
        return async (...args: Parameters<EventStore['appendMany']>) => {
          reach();
          await opened;
          return target.appendMany(...args);
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: gated, reached, open };
}

/**
 * Two consumers of one partition for a moment (a rebalance's zombie): both decide the same message, under the same
 * key, on the same stream version, at different instants. The first commits; the second's append then finds the
 * same event ids where its own would go and the store reports a duplicate, writing nothing. What the second decided
 * is not what is stored, so it must not become its cached state: its next command would be decided on a state the
 * stream never had.
 */
describe('a consumer batch whose append the store reports as a duplicate', () => {
  const postgres = eventStoreOnFreshSchema('batch_duplicate');

  it('keeps what the stream holds, not its own decision', async () => {
    const { pool, store } = postgres;
    const accountId = 'zombie-race';
    const usage = usageCommand('u-1', 3_000_000n, { accountId, occurredAt: '2026-12-01T10:00:00.000Z' });
    const first = new AccountRepository(store, config, new ManualClock(new Date('2026-12-01T10:00:01.000Z')));
    const gate = gatedAppends(store);
    const zombie = new AccountRepository(gate.store, config, new ManualClock(new Date('2026-12-01T10:00:09.000Z')));

    const tx = await pool.connect();
    try {
      await tx.query('BEGIN');
      // The zombie has read the stream's version (none yet) and decided; its append waits.
      const zombieBatch = zombie.executeBatch([{ command: usage, commandKey: 'usage:u-1' }], zombie.joinTransaction(tx));
      await gate.reached;
      // Meanwhile the partition's new owner decides the same message and commits.
      await first.executeBatch([{ command: usage, commandKey: 'usage:u-1' }], undefined);
      gate.open();
      const outcome = await zombieBatch;
      await tx.query('COMMIT');
      zombie.remember(outcome.saved);
    } finally {
      tx.release();
    }

    const stored = await new AccountRepository(store, config, new ManualClock(new Date('2026-12-01T10:01:00.000Z'))).load(accountId);
    const cached = await zombie.load(accountId);
    expect(stored.state.openedAt).toBe('2026-12-01T10:00:01.000Z');
    expect({ version: cached.version, openedAt: cached.state.openedAt }).toEqual({ version: stored.version, openedAt: stored.state.openedAt });
    expect(cached.state).toEqual(stored.state);
  });
});
