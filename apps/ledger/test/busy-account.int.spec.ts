import { setTimeout as sleep } from 'node:timers/promises';
import type { NewEvent } from '@tally/event-store';
import { initialState, type AccountCommand, type AccountState } from '@tally/ledger-domain';
import { systemClock } from '@tally/shared';
import { AccountRepository } from '../src/accounts/account.repository';
import { accountStreamId } from '@tally/ledger-events';
import type { LedgerConfig } from '../src/config/ledger.config';
import { eventStoreOnFreshSchema } from './event-store.fixtures';

const grant = (accountId: string, key: string): AccountCommand => ({ type: 'GrantCredits', accountId, grantId: key, kind: 'promotional', amount: 1_000_000n, source: `promo:${key}` });

/**
 * An HTTP command on an account another writer keeps appending to (the consumer catching up after an outage):
 * a lost race is retried from the cached state plus what the winner appended. It used to drop the cache, so each
 * retry re-read the whole stream, lost the race again and answered 500 for as long as the other writer was busy.
 */
describe('HTTP commands on a busy account', () => {
  const accountId = 'busy-account';
  const config = { ACCOUNT_CACHE_SIZE: 100, ACCOUNT_CACHE_REMEMBERED: 250_000 } as LedgerConfig;
  const postgres = eventStoreOnFreshSchema('busy_account', 6);

  it('a grant racing another writer on a 10,000-event stream succeeds, retrying from its cached state', async () => {
    // History and the other writer's events, decided up front by the repository's own decider.
    const { store } = postgres;
    const decider = new AccountRepository(store, config, systemClock) as unknown as {
      decideWithSnapshots: (state: AccountState, command: AccountCommand, key: string, now: Date) => { newEvents: NewEvent[]; state: AccountState };
    };
    let state = initialState;
    const decide = (key: string): NewEvent[] => {
      const decided = decider.decideWithSnapshots(state, grant(accountId, key), key, new Date());
      state = decided.state;
      return decided.newEvents;
    };
    const history = Array.from({ length: 10_000 }, (_, i) => decide(`h-${i}`)).flat();
    const others = Array.from({ length: 2_000 }, (_, i) => decide(`o-${i}`));
    await store.appendMany([{ streamId: accountStreamId(accountId), expectedVersion: 'no_stream', events: history }]);

    const http = new AccountRepository(store, config, systemClock);
    await http.load(accountId); // warm, as a running ledger's cache is

    // The other writer appends every ~25 ms, never waiting for anyone (as a consumer's batches do).
    let writing = true;
    const writer = (async () => {
      for (const events of others) {
        if (!writing) return;
        await store.appendMany([{ streamId: accountStreamId(accountId), expectedVersion: 'any', events }]);
        await sleep(25);
      }
    })();
    const failed: string[] = [];
    let done = 0;
    const deadline = Date.now() + 20_000;
    try {
      for (let i = 0; i < 15 && Date.now() < deadline; i++) {
        const started = Date.now();
        await http.execute(grant(accountId, `g-${i}`), `g-${i}`).then(
          () => done++,
          (error: Error) => failed.push(`g-${i}: ${error.message} after ${Date.now() - started} ms`),
        );
      }
    } finally {
      writing = false;
      await writer;
    }
    expect(failed).toEqual([]);
    expect(done).toBe(15);
  }, 60_000);
});
