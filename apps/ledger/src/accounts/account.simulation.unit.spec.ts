import fc from 'fast-check';
import { Topics, parseMessage, serializeEnvelope } from '@tally/contracts';
import type { RecordedEvent } from '@tally/event-store';
import {
  type AccountCommand, type AccountEvent, type AccountState, type Kept, balanceOf, balanceView, decide, evolve, evolvesPartial, forget, initialState, isAccountError,
  keptFor, refundedUsages,
} from '@tally/ledger-domain';
import {
  ACCOUNT, describeSteps, modelBalance, modelBalanceAt, modelInitialState, modelStep, recallFromHistory, simHistory, toCommands, type SimStep,
} from '@tally/ledger-domain/testing';
import { accountStreamId, decodeEvent, snapshotOf, toLedgerEnvelope, toNewEvent } from '@tally/ledger-events';

/**
 * The simulation: seeded command histories (libs/ledger-domain/src/testing/reference-model/account-simulation.fixtures.ts),
 * each command decided by the account decider and by the reference model (account.model.ts, written from the
 * docs), and at every step the two must agree: the same events (or the same refusal code) and the same balance.
 * Every event the decider emits also survives store → relay envelope → contract parse → decode.
 *
 * A failure prints the shortest history fast-check shrank it to, the step where they part, and the seed and path.
 * Replay it:   FC_SEED=<seed> FC_PATH=<path> npx jest --selectProjects unit --testPathPattern account.simulation
 * Run longer:  SIM_RUNS=20000 npx jest --selectProjects unit --testPathPattern account.simulation
 */
const runs = Number(process.env.SIM_RUNS ?? 600);
const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
const path = process.env.FC_PATH;

describe('account simulation: the decider against the reference model', () => {
  it('agrees with the model at every step of any history, and every event survives the wire', () => simulate(undefined));

  // As the ledger runs with snapshots (ACCOUNT_SNAPSHOT_EVERY): the state forgets its usage and hold keys and its
  // unrefunded debits every few steps, and what a command needs is recalled as the AccountRepository recalls it.
  it('agrees with the model too when the account forgets every third step and recalls before deciding', () => simulate(3));

  // As the AccountRepository folds a stream too long to hold whole when a command needs the whole account (a refund of
  // a forgotten debit): page by page, forgetting between pages all but what the command and the stream's later refunds
  // need (`keptFor`), so its memory stays bounded however long the stream.
  it('agrees with the model too when a whole recall is a fold that forgets as it goes, keeping what the command and the refunds need', () =>
    simulate(3, 'forgetting'));
});

/**
 * The AccountRepository's fold of a long stream (foldForgetting there): two events a page here, forgetting between pages
 * and at the end what `kept` does not hold. A refund it cannot fold fails the run.
 */
function foldForgetting(events: readonly AccountEvent[], kept: Kept, page = 2): AccountState {
  let state: AccountState = initialState;
  events.forEach((event, index) => {
    if (index > 0 && index % page === 0) state = forget(state, kept);
    if (!evolvesPartial(state, event)) throw new Error(`a forgetting fold lacks the debit ${event.type === 'UsageRefunded' ? event.data.usageId : ''} a refund names`);
    state = evolve(state, event);
  });
  return events.length > page ? forget(state, kept) : state;
}

/**
 * `forgetEvery`: forget the state before every that many steps (undefined = never). `wholeRecall`: what a command that
 * needs the whole account is decided on: the whole state, or a fold that forgets as it goes (foldForgetting).
 */
function simulate(forgetEvery: number | undefined, wholeRecall: 'whole' | 'forgetting' = 'whole'): void {
  const seen = new Set<string>();
  fc.assert(
    fc.property(simHistory, (ops) => {
      const steps = toCommands(ops);
      let state: AccountState = initialState;
      let whole: AccountState = initialState;
      const history: { command: AccountCommand; events: AccountEvent[] }[] = [];
      let model = modelInitialState;
      let version = 0;
      const events: AccountEvent[] = [];
      const wholeFor = (commands: AccountCommand[]) => (wholeRecall === 'whole' ? whole : foldForgetting(events, keptFor(commands, refundedUsages(events))));
      steps.forEach((step, index) => {
        if (forgetEvery !== undefined && index % forgetEvery === forgetEvery - 1) state = forget(state);
        const recalled = recallFromHistory(state, step.command, history, whole);
        state = recalled === whole && recalled !== state ? wholeFor([step.command]) : recalled;
        const decided = decideOrRefuse(state, step);
        const expected = modelStep(model, step.command, step.now);
        const actual = decided.ok ? { ok: true, events: decided.events } : { ok: false, code: decided.code };
        const wanted = expected.ok ? { ok: true, events: expected.events } : { ok: false, code: expected.code };
        if (!equal(actual, wanted)) throw new Disagreement(steps, index, 'decision', actual, wanted);
        if (!decided.ok || !expected.ok) {
          seen.add(`refused:${decided.ok ? '' : decided.code}`);
          return;
        }
        history.push({ command: step.command, events: decided.events });
        for (const [i, event] of decided.events.entries()) {
          const before = whole;
          whole = evolve(whole, event);
          events.push(event);
          state = evolvesPartial(state, event) ? evolve(state, event) : wholeFor([]);
          version += 1;
          seen.add(outcome(event, step.command, before, whole));
          survivesTheWire(event, state, version, step, i);
        }
        model = expected.state;
        const views = { balanceOf: balanceOf(state), balanceView: balanceView(state, step.now) };
        const modelViews = { balanceOf: modelBalance(model), balanceView: modelBalanceAt(model, step.now) };
        if (!equal(views, modelViews)) throw new Disagreement(steps, index, 'balance', views, modelViews);
      });
    }),
    { numRuns: runs, ...(seed !== undefined && { seed }), ...(path !== undefined && { path }) },
  );
  // The histories reach every event type and the refusals production sees.
  const reached = [
    'AccountOpened', 'CreditsGranted', 'UsageDebited', 'CreditsExpired', 'OverdraftIncurred', 'OverdraftWrittenOff', 'OverdraftSettled', 'OverdraftSettled:fromBucket', 'OverdraftSettled:fromBucket:renewal',
    'LowCreditThresholdCrossed', 'CreditsDepleted', 'CycleStarted', 'PlanChanged', 'HoldPlaced', 'HoldSettled', 'HoldReleased',
    'UsageRefunded', 'UsageRefunded:carriedIntoCycle', 'GrantVoided',
    'refused:USAGE_NOT_FOUND', 'refused:REFUND_EXCEEDS_DEBIT', 'refused:GRANT_NOT_FOUND', 'refused:GRANT_NOT_VOIDABLE', 'refused:ALREADY_VOIDED',
    'refused:AMOUNT_OUT_OF_RANGE', 'refused:BALANCE_LIMIT_EXCEEDED', 'refused:IDEMPOTENCY_CONFLICT', 'refused:INSUFFICIENT_CREDITS', 'refused:CYCLE_RENEWAL_PENDING', 'refused:INVALID_AMOUNT',
  ];
  // Replaying one history (FC_PATH) reaches only what it reaches.
  if (path === undefined) expect(reached.filter((outcome) => !seen.has(outcome))).toEqual([]);
}

/**
 * The event's type, or a finer outcome: a renewal's settlement from the account's other credits; a refund of usage
 * an earlier cycle debited that gives back use of the current cycle (its tail was owed when the cycle began).
 */
function outcome(event: AccountEvent, command: AccountCommand, before: AccountState, after: AccountState): string {
  if (event.type === 'OverdraftSettled' && event.data.fromBucket) return `OverdraftSettled:fromBucket${command.type === 'StartCycle' ? ':renewal' : ''}`;
  if (event.type === 'UsageRefunded' && before.debits.get(event.data.usageId)?.cycleId !== before.cycle?.cycleId && after.usedThisCycle < before.usedThisCycle) {
    return 'UsageRefunded:carriedIntoCycle';
  }
  return event.type;
}

type Decided = { ok: true; events: AccountEvent[] } | { ok: false; code: string };

function decideOrRefuse(state: AccountState, { command, now }: SimStep): Decided {
  try {
    return { ok: true, events: decide(command, state, { now }) };
  } catch (error) {
    if (isAccountError(error)) return { ok: false, code: error.code };
    throw error;
  }
}

/** Stored as the ledger stores it, published as the relay publishes it, parsed by the contract, decoded: unchanged. */
function survivesTheWire(event: AccountEvent, state: AccountState, version: number, { command, now }: SimStep, index: number): void {
  const key = `${command.type}:${JSON.stringify(command, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v))}`;
  const stored = toNewEvent(ACCOUNT, key, index, event, snapshotOf(balanceOf(state)));
  const recorded: RecordedEvent = { ...stored, streamId: accountStreamId(ACCOUNT), version, metadata: stored.metadata ?? {}, recordedAt: now, checkpoint: String(version) };
  const reloaded = { ...recorded, data: JSON.parse(JSON.stringify(recorded.data)) as Record<string, unknown> };
  const { envelope } = parseMessage(Topics.ledgerEvents, serializeEnvelope(toLedgerEnvelope(reloaded)));
  const decoded = decodeEvent({ type: envelope.type, data: envelope.data as Record<string, unknown> });
  if (!equal(decoded, event)) throw new Error(`${event.type} does not survive the wire:\n  emitted ${show(event)}\n  decoded ${show(decoded)}`);
}

class Disagreement extends Error {
  constructor(steps: readonly SimStep[], index: number, what: string, decider: unknown, model: unknown) {
    super(
      `decider and model disagree on the ${what} at step ${index + 1}:\n` +
        `  decider: ${show(decider)}\n  model:   ${show(model)}\n` +
        `history (${index + 1} of ${steps.length} steps):\n${describeSteps(steps.slice(0, index + 1))}`,
    );
  }
}

const plain = (value: unknown): string => JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
const show = plain;
/** Class instances and plain objects compare by their own enumerable fields; key order does not matter. */
function equal(a: unknown, b: unknown): boolean {
  const sorted = (value: unknown): unknown =>
    JSON.parse(plain(value), (_k, v: unknown) =>
      v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => x.localeCompare(y))) : v,
    );
  return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
}
