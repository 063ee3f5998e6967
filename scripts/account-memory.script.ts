/**
 * Prints, as JSON, what a cached account keeps in memory (heap bytes, measured): per usage remembered since its last
 * snapshot (its debit, which is also its idempotency key) and per account once it forgot them. Run in a process of its
 * own, so nothing else is collected between the two readings (apps/ledger/src/accounts/account-cache.memory.unit.spec.ts
 * runs it; a reading taken inside a shared test worker was seen to miss the states altogether):
 *   node --expose-gc -r ts-node/register/transpile-only -r tsconfig-paths/register scripts/account-memory.script.ts
 */
import { forget, type AccountState } from '@tally/ledger-domain';
import { stateAfterUsages } from '@tally/ledger-domain/testing';
import type { Micro } from '@tally/money';

const ACCOUNTS = 200;
const USAGES = 100;

/** An account as the cache holds it between snapshots: a purchase, then `usages` usage events of one model each. */
const busyAccount = (account: string, usages: number): AccountState =>
  stateAfterUsages(account, usages, (command) => ({
    ...command, usageId: `${command.usageId}-7f3c9a1e`, amount: 250_000n as Micro, models: ['gpt-4o'],
    pricing: { rateCardVersion: 'rc-2026-03', lines: [{ model: 'gpt-4o', feature: 'chat', amount: 250_000n as Micro, inputTokens: 1_200, outputTokens: 350 }] },
  }));

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

/** Heap in use once everything unreachable is collected (a second collection finishes the first one's sweeping). */
function settled(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

/** The median of five rounds of what `ACCOUNTS` states take: the first round pays one-time costs (code compiled). */
function retained(make: (i: number) => AccountState): number {
  const rounds = Array.from({ length: 5 }, () => {
    const before = settled();
    const held = Array.from({ length: ACCOUNTS }, (_, i) => make(i));
    const bytes = settled() - before;
    if (held.length !== ACCOUNTS) throw new Error('unreachable'); // keeps them alive until measured
    return bytes;
  });
  return rounds.sort((a, b) => a - b)[2];
}

const whole = retained((i) => busyAccount(`acct-${i}`, USAGES));
const forgotten = retained((i) => forget(busyAccount(`acct-${i}`, USAGES)));
process.stdout.write(`${JSON.stringify({ perUsage: (whole - forgotten) / (ACCOUNTS * USAGES), perForgottenAccount: forgotten / ACCOUNTS })}\n`);
